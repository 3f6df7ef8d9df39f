"""Generators and comprehensions chained into a data pipeline: every item
crosses several generator frames (a resume and a yield each)."""

import itertools


def numbers(n):
    for i in range(n):
        yield i


def only(predicate, items):
    for item in items:
        if predicate(item):
            yield item


def windows(items, size):
    window = []
    for item in items:
        window.append(item)
        if len(window) == size:
            yield tuple(window)
            window.pop(0)


def running_total(items):
    total = 0
    for item in items:
        total += item
        yield total


def is_interesting(x):
    return x % 3 != 0


def main():
    checksum = 0
    for rep in range(24):
        stream = only(is_interesting, numbers(120_000))
        sums = (sum(w) for w in windows(stream, 4))
        totals = running_total(s & 0xFFFF for s in sums)
        checksum ^= sum(itertools.islice(totals, 0, None, 7))
        squares = {k: k * k for k in range(20_000) if k & 1}
        checksum += len([v for v in squares.values() if v % 5 == 1])
        checksum += len({(x * x) % 1013 for x in numbers(20_000)})
    print(checksum)


if __name__ == "__main__":
    main()
