"""Planted patterns: every line with an expect comment must be found, and nothing else."""
import os  # expect: unused_import
import math

LIMIT = 3


def nested(a, b):
    pairs = 0
    for x in a:
        for y in b:  # expect: nested_loop
            if x == y:
                pairs += 1
    return pairs


def membership(items, wanted):
    chosen = list(wanted)
    found = 0
    for item in items:
        if item in chosen:  # expect: membership_in_list
            found += 1
    return found


def concat(words):
    text = ""
    for word in words:
        text += word  # expect: string_concat_in_loop
    return text


def front(values):
    queue = list(values)
    out = []
    while queue:
        out.append(queue.pop(0))  # expect: list_front_ops
    return out


def invariant(values, k):
    total = 0.0
    for v in values:
        total += v * math.sqrt(k)  # expect: loop_invariant
    return total


def redundant(values, key):
    first = sorted(values, key=key)
    second = sorted(values, key=key)  # expect: redundant_call
    return first[0] + second[-1]


def uses_global(values):
    hits = 0
    for v in values:
        if v > LIMIT:  # expect: global_in_loop
            hits += 1
    return hits


def exceptions(values):
    parsed = 0
    for v in values:
        try:  # expect: exception_in_loop
            parsed += int(v)
        except ValueError:
            parsed -= 1
    return parsed


def branches(x):  # expect: high_complexity
    if x == 1:
        return "one"
    elif x == 2:
        return "two"
    elif x == 3:
        return "three"
    elif x == 4:
        return "four"
    elif x == 5:
        return "five"
    elif x == 6:
        return "six"
    elif x == 7:
        return "seven"
    elif x == 8:
        return "eight"
    elif x == 9:
        return "nine"
    elif x == 10:
        return "ten"
    return "many"


def never_called():  # expect: dead_code
    return 1


def unreachable(x):
    if x:
        return 1
    return 0
    print("after the return")  # expect: dead_code


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
    unreachable(True)
