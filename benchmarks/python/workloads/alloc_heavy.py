# Allocation-heavy: small objects made and dropped at a high rate (lists,
# dicts, tuples, strings, bytes), plus a structure that is kept and grows.
def make_records(n):
    records = []
    for i in range(n):
        name = "item-" + str(i)
        records.append({"id": i, "name": name, "tags": [name[:3], name[-2:]], "pos": (i, i * 2)})
    return records


def churn(records):
    total = 0
    for r in records:
        parts = r["name"].split("-")
        blob = bytes(len(parts[1]) * 8)
        total += len(blob) + len([t.upper() for t in r["tags"]])
    return total


def main():
    kept = []
    total = 0
    for round_ in range(12):
        records = make_records(30000)
        total += churn(records)
        kept.append(records[:: 100])
    print(total, sum(len(k) for k in kept))


main()
