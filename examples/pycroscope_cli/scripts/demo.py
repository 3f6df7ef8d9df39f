"""A first profile: an order report with one obvious hot spot.

    pycroscope profile examples/pycroscope_cli/scripts/demo.py
    pycroscope profile --sample examples/pycroscope_cli/scripts/demo.py 8000

The report builds orders, parses them, totals them per customer and looks for
duplicates the slow way (a list scan per order: find_duplicates is the hot
spot), while a worker thread checksums the raw lines. Runs unchanged under
plain python3: the pycroscope module only exists inside a host that registers
it (the pycroscope command does).
"""
import sys
import threading

try:
    import pycroscope
except ImportError:  # plain python3: no zones
    pycroscope = None


def make_orders(count):
    """Deterministic CSV lines: order id, customer, amount in cents."""
    lines = []
    seed = 12345
    for order in range(count):
        seed = (seed * 1103515245 + 12345) % 2**31
        customer = seed % 97
        amount = seed % 10000
        lines.append(f"{order % (count - count // 20)},c{customer},{amount}")
    return lines


def parse(lines):
    orders = []
    for line in lines:
        order_id, customer, cents = line.split(",")
        orders.append((int(order_id), customer, int(cents)))
    return orders


def total_by_customer(orders):
    totals = {}
    for _, customer, cents in orders:
        totals[customer] = totals.get(customer, 0) + cents
    return totals


def find_duplicates(orders):
    seen = []
    duplicates = []
    for order_id, _, _ in orders:
        if order_id in seen:  # a list, not a set: the hot spot
            duplicates.append(order_id)
        seen.append(order_id)
    return duplicates


def checksum(lines):
    if pycroscope:
        pycroscope.set_thread_name("checksum")
    value = 0
    for line in lines[::4]:
        for char in line:
            value = (value * 31 + ord(char)) & 0xFFFFFFFF
    return value


def main(count):
    lines = make_orders(count)
    worker = threading.Thread(target=checksum, args=(lines,))
    worker.start()
    orders = parse(lines)
    totals = total_by_customer(orders)
    if pycroscope:
        with pycroscope.zone("duplicates"):
            duplicates = find_duplicates(orders)
        pycroscope.counter("duplicates", len(duplicates))
    else:
        duplicates = find_duplicates(orders)
    worker.join()
    best = max(totals, key=totals.get)
    print(f"{len(orders)} orders, {len(totals)} customers, best {best}, {len(duplicates)} duplicates")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
