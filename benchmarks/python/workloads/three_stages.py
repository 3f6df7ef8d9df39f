"""Three stages of plain arithmetic, about 0.1 s in all, for `pycroscope
compare`: `--slower` makes stage_transform do 10% more work, the regression
the comparison must find (tests/python/store/compare_cli_test.cpp,
benchmarks/python/compare_detection.sh). `--scale X` multiplies all work."""

import sys


def stage_load(n):
    total = 0
    for i in range(n):
        total += (i * 7) % 13
    return total


def stage_transform(n):
    total = 0
    for i in range(n):
        total += (i * 11) % 17
    return total


def stage_report(n):
    total = 0
    for i in range(n):
        total += (i * 5) % 11
    return total


def main(argv):
    scale = 1.0
    if "--scale" in argv:
        scale = float(argv[argv.index("--scale") + 1])
    n = int(300_000 * scale)
    transform = int(n * 1.10) if "--slower" in argv else n
    return stage_load(n) + stage_transform(transform) + stage_report(n)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
