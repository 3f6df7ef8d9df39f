import json


def load(path):
    with open(path) as f:
        return json.load(f)


def slow_sum(values):
    total = 0
    for v in values:
        total = total + v
    return total


def build(n):
    out = []
    for i in range(n):
        out.append(str(i) * 3)
    return out


def main():
    data = build(10000)
    slow_sum(range(100000))
    return data


if __name__ == "__main__":
    main()
