"""Checks a speedscope file the way speedscope reads it.

usage: /usr/bin/python3 check_speedscope.py SCHEMA FILE

Validates FILE against speedscope's JSON schema (python3-jsonschema), then
checks what the schema cannot say: every frame index exists, evented profiles
are sorted by time and balanced (each close matches the innermost open frame,
nothing left open, within startValue..endValue), sampled profiles have one
weight per sample. Prints one line of JSON per profile:
{"type", "name", "unit", "events" | "samples", "weight"} and exits 0, or
prints the problem and exits 1.
"""

import json
import sys

import jsonschema


def fail(message):
    print(message)
    sys.exit(1)


def main():
    schema_path, file_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(file_path, encoding="utf-8") as f:
        document = json.load(f)
    try:
        jsonschema.validate(instance=document, schema=schema)
    except jsonschema.ValidationError as error:
        fail("schema: " + error.message)
    frames = document["shared"]["frames"]
    for index, profile in enumerate(document["profiles"]):
        summary = {"type": profile["type"], "name": profile["name"], "unit": profile["unit"]}
        if profile["startValue"] > profile["endValue"]:
            fail(f"profile {index}: startValue after endValue")
        if profile["type"] == "evented":
            stack = []
            last = profile["startValue"]
            for event in profile["events"]:
                if not 0 <= event["frame"] < len(frames):
                    fail(f"profile {index}: frame {event['frame']} does not exist")
                if event["at"] < last:
                    fail(f"profile {index}: events not sorted at {event['at']}")
                if event["at"] > profile["endValue"]:
                    fail(f"profile {index}: event after endValue")
                last = event["at"]
                if event["type"] == "O":
                    stack.append(event["frame"])
                elif not stack or stack[-1] != event["frame"]:
                    fail(f"profile {index}: close of frame {event['frame']} that is not the innermost open one")
                else:
                    stack.pop()
            if stack:
                fail(f"profile {index}: {len(stack)} frames left open")
            summary["events"] = len(profile["events"])
        else:
            if len(profile["samples"]) != len(profile["weights"]):
                fail(f"profile {index}: {len(profile['samples'])} samples, {len(profile['weights'])} weights")
            for sample in profile["samples"]:
                for frame in sample:
                    if not 0 <= frame < len(frames):
                        fail(f"profile {index}: frame {frame} does not exist")
            summary["samples"] = len(profile["samples"])
            summary["weight"] = sum(profile["weights"])
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
