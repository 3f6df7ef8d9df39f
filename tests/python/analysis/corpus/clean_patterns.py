"""The clean twins of planted_patterns.py: the same work, no finding."""
import math
from collections import deque

LIMIT = 3


def nested(a, b):
    return len(set(a) & set(b))


def membership(items, wanted):
    chosen = set(wanted)
    found = 0
    for item in items:
        if item in chosen:
            found += 1
    return found


def concat(words):
    return "".join(words)


def front(values):
    queue = deque(values)
    out = []
    while queue:
        out.append(queue.popleft())
    return out


def invariant(values, k):
    root = math.sqrt(k)
    total = 0.0
    for v in values:
        total += v * root
    return total


def redundant(values, key):
    ordered = sorted(values, key=key)
    return ordered[0] + ordered[-1]


def uses_global(values, limit=LIMIT):
    hits = 0
    for v in values:
        if v > limit:
            hits += 1
    return hits


def exceptions(values):
    try:
        return sum(int(v) for v in values)
    except ValueError:
        return -1


NAMES = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
         10: "ten"}


def branches(x):
    return NAMES.get(x, "many")


def reachable(x):
    if x:
        return 1
    return 0


def main():
    numbers = list(range(60))
    nested(numbers, numbers)
    membership(numbers, numbers)
    concat([str(n) for n in numbers])
    front(numbers)
    invariant(numbers, 7)
    redundant(numbers, abs)
    uses_global(numbers)
    exceptions(["1", "x", "3"])
    for n in (1, 5, 11):
        branches(n)
    reachable(True)
