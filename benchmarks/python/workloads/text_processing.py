"""A realistic script: parse log lines with regular expressions, round-trip
records through json, aggregate with collections, format a report."""

import collections
import json
import re

LINE = re.compile(
    r"(?P<ip>\d+\.\d+\.\d+\.\d+) - - \[(?P<day>\d+)/(?P<month>\w+)/(?P<year>\d+):(?P<time>[\d:]+)\] "
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3}) (?P<size>\d+)'
)
PATHS = ["/", "/index.html", "/api/items", "/api/items/42", "/static/app.js", "/login", "/search?q=python"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]


def make_lines(count):
    lines = []
    for i in range(count):
        ip = "10.%d.%d.%d" % (i % 7, (i * 13) % 256, (i * 31) % 256)
        status = 200 if i % 11 else (404 if i % 2 else 500)
        lines.append('%s - - [%02d/Mar/2024:12:%02d:%02d] "%s %s HTTP/1.1" %d %d'
                     % (ip, 1 + i % 28, i % 60, (i * 7) % 60, METHODS[i % len(METHODS)],
                        PATHS[(i * 5) % len(PATHS)], status, (i * 97) % 5000))
    return lines


def parse(line):
    match = LINE.match(line)
    if match is None:
        return None
    record = match.groupdict()
    record["status"] = int(record["status"])
    record["size"] = int(record["size"])
    return record


def normalise_path(path):
    path = path.split("?", 1)[0]
    return re.sub(r"/\d+", "/<id>", path)


def summarise(records):
    by_path = collections.defaultdict(lambda: {"hits": 0, "bytes": 0, "errors": 0})
    statuses = collections.Counter()
    for r in records:
        entry = by_path[normalise_path(r["path"])]
        entry["hits"] += 1
        entry["bytes"] += r["size"]
        if r["status"] >= 400:
            entry["errors"] += 1
        statuses[r["status"]] += 1
    return by_path, statuses


def report(by_path, statuses):
    rows = sorted(by_path.items(), key=lambda kv: (-kv[1]["hits"], kv[0]))
    out = ["%-20s %8s %10s %6s" % ("path", "hits", "bytes", "errors")]
    for path, entry in rows:
        out.append("%-20s %8d %10d %6d" % (path, entry["hits"], entry["bytes"], entry["errors"]))
    out.append(", ".join("%d: %d" % item for item in sorted(statuses.items())))
    return "\n".join(out)


def main():
    lines = make_lines(50_000)
    total = 0
    for _ in range(3):
        records = [r for r in map(parse, lines) if r is not None]
        blob = json.dumps(records)
        records = json.loads(blob)
        by_path, statuses = summarise(records)
        text = report(by_path, statuses)
        total += len(text) + len(blob)
    print(total)


if __name__ == "__main__":
    main()
