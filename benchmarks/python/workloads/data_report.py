"""A realistic script: generate sales records as CSV, parse them back with
the csv module into dataclasses, group and summarise with dicts and the
statistics module, and format a text report."""

import csv
import io
import random
import statistics
from dataclasses import dataclass

REGIONS = ["north", "south", "east", "west", "central"]
PRODUCTS = ["widget", "gadget", "gizmo", "doohickey", "sprocket", "flange", "bracket"]


@dataclass
class Sale:
    region: str
    product: str
    units: int
    price: float
    day: int

    @property
    def revenue(self):
        return self.units * self.price


def generate(rows, seed):
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["region", "product", "units", "price", "day"])
    for _ in range(rows):
        writer.writerow([rng.choice(REGIONS), rng.choice(PRODUCTS), rng.randint(1, 40),
                         round(rng.uniform(2.0, 90.0), 2), rng.randint(1, 365)])
    return out.getvalue()


def parse(text):
    reader = csv.DictReader(io.StringIO(text))
    return [Sale(r["region"], r["product"], int(r["units"]), float(r["price"]), int(r["day"])) for r in reader]


def summarise(sales):
    by_key = {}
    for sale in sales:
        by_key.setdefault((sale.region, sale.product), []).append(sale)
    rows = []
    for (region, product), group in sorted(by_key.items()):
        revenue = [s.revenue for s in group]
        rows.append((region, product, len(group), sum(revenue), statistics.median(revenue),
                     max(group, key=lambda s: s.revenue).day))
    return rows


def report(rows):
    lines = ["{:<8} {:<10} {:>6} {:>12} {:>9} {:>5}".format("region", "product", "n", "revenue", "median", "best")]
    for region, product, n, total, median, best in rows:
        lines.append("{:<8} {:<10} {:>6} {:>12.2f} {:>9.2f} {:>5}".format(region, product, n, total, median, best))
    return "\n".join(lines)


def main():
    checksum = 0.0
    for seed in range(14):
        rows = summarise(parse(generate(12000, seed)))
        text = report(rows)
        checksum += sum(r[3] for r in rows) + len(text)
    print(round(checksum, 2))


main()
