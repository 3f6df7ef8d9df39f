#!/usr/bin/python3
"""Parses `python -m test -v` logs into one result per test case and compares them.

Used by regrtest_compare.sh:
  regrtest_compare.py parse LOG              prints "key<TAB>status" lines
  regrtest_compare.py compare PLAIN MODE [PLAIN2]
      prints "compared N" and one "DIFF key: plain -> mode" line per difference
      (with PLAIN2, a case whose two plain results differ is printed as FLAKY instead).
"""
import re
import sys

STATUS = re.compile(r"(ok|FAIL|ERROR|skipped|expected failure|unexpected success)\b")
STATUS_LINE = re.compile(r"^(?:.*\W)?(ok|FAIL|ERROR|skipped(?: .*)?|expected failure|unexpected success)$")
# "test_x (test.mod.Class.test_x)" or a doctest's "name (module)", optionally with a subtest's " (i=1)".
HEADER = re.compile(r"^\S+ \([\w.]*\)(?: .*)?$")
VERDICT = re.compile(r"^Tests result: (.*)$")


def parse(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    results = {}
    seen = {}
    previous = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        verdict = VERDICT.match(line)
        if verdict:
            results["regrtest result"] = verdict.group(1)
        if " ... " in line:
            desc, rest = line.split(" ... ", 1)
            if HEADER.match(desc):
                key = desc
            elif HEADER.match(previous) and " ... " not in previous:
                key = previous  # the description is the docstring's first line
            else:
                previous = line
                i += 1
                continue
            m = STATUS.match(rest)
            status = m.group(1) if m else None
            j = i + 1
            while status is None and j < len(lines) and j < i + 400:
                nxt = lines[j]
                if " ... " in nxt and HEADER.match(nxt.split(" ... ", 1)[0]) and STATUS.match(nxt.split(" ... ", 1)[1]):
                    break  # the next case: this one printed no result (a crash)
                sm = STATUS_LINE.match(nxt)
                if sm:
                    status = sm.group(1).split(" ")[0] if sm.group(1).startswith("skipped") else sm.group(1)
                j += 1
            if status is None:
                status = "no result"
            n = seen.get(key, 0) + 1
            seen[key] = n
            results[key if n == 1 else "%s #%d" % (key, n)] = status
        previous = line
        i += 1
    return results


def main(argv):
    if argv[1] == "parse":
        for key, status in parse(argv[2]).items():
            print("%s\t%s" % (key, status))
        return 0
    plain = parse(argv[2])
    mode = parse(argv[3])
    plain2 = parse(argv[4]) if len(argv) > 4 else None
    cases = [k for k in plain if k != "regrtest result"]
    print("compared %d" % len(cases))
    differences = 0
    for key in sorted(set(plain) | set(mode)):
        a = plain.get(key, "missing")
        b = mode.get(key, "missing")
        if a == b:
            continue
        if plain2 is not None and plain2.get(key, "missing") != a:
            print("FLAKY %s: plain %s, plain again %s, profiled %s" % (key, a, plain2.get(key, "missing"), b))
            continue
        print("DIFF %s: plain %s -> profiled %s" % (key, a, b))
        differences += 1
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
