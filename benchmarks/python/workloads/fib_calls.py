"""Call-dense micro workload: plain recursion, method calls and small builtins.

The worst case for any tracer: almost all of the time is call overhead.
"""


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Vector:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, other):
        return Vector(self.x + other.x, self.y + other.y)

    def scale(self, k):
        return Vector(self.x * k, self.y * k)

    def norm2(self):
        return self.x * self.x + self.y * self.y


def walk(steps):
    v = Vector(0, 0)
    step = Vector(1, 2)
    total = 0
    for i in range(steps):
        v = v.add(step.scale(i & 3))
        total += v.norm2() & 0xFF
        total += len(str(i & 7))
    return total


def main():
    total = fib(29)
    total += walk(1_000_000)
    print(total)


if __name__ == "__main__":
    main()
