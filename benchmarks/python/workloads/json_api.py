"""A realistic script: an API backend's hot loop. Requests arrive as JSON,
are validated and normalised, answered from an in-memory store, and the
responses are encoded back to JSON with a checksum, as a JSON web service
spends its time."""

import datetime
import hashlib
import json
import random

STORE = {}


def make_requests(n, seed):
    rng = random.Random(seed)
    for i in range(n):
        kind = rng.choice(["create", "read", "update", "search"])
        body = {"id": rng.randint(1, 2000), "kind": kind, "sent": "2026-11-%02dT%02d:%02d:00" % (
            rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59))}
        if kind in ("create", "update"):
            body["record"] = {"name": "user%d" % rng.randint(1, 99999), "score": rng.random() * 100,
                              "tags": [rng.choice("abcdefgh") * 3 for _ in range(rng.randint(0, 5))]}
        elif kind == "search":
            body["query"] = {"min_score": rng.random() * 50, "tag": rng.choice("abcdefgh") * 3}
        yield json.dumps(body)


def validate(request):
    if not isinstance(request.get("id"), int) or request["id"] <= 0:
        raise ValueError("bad id")
    request["sent"] = datetime.datetime.fromisoformat(request["sent"])
    record = request.get("record")
    if record is not None:
        if not isinstance(record.get("name"), str) or not isinstance(record.get("score"), float):
            raise ValueError("bad record")
        record["tags"] = sorted(set(record.get("tags", [])))
    return request


def handle(request):
    kind = request["kind"]
    if kind in ("create", "update"):
        STORE[request["id"]] = dict(request["record"], updated=request["sent"].isoformat())
        return {"ok": True, "id": request["id"]}
    if kind == "read":
        record = STORE.get(request["id"])
        return {"ok": record is not None, "record": record}
    query = request["query"]
    hits = [key for key, record in STORE.items()
            if record["score"] >= query["min_score"] and query["tag"] in record["tags"]][:20]
    return {"ok": True, "hits": hits}


def main():
    digest = hashlib.sha256()
    errors = 0
    for raw in make_requests(12000, 7):
        try:
            response = handle(validate(json.loads(raw)))
        except ValueError:
            errors += 1
            continue
        digest.update(json.dumps(response, sort_keys=True).encode())
    print(digest.hexdigest()[:16], errors, len(STORE))


main()
