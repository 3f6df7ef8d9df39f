"""A small workload for `pycroscope profile`.

    pycroscope profile examples/pycroscope_cli/scripts/demo.py 20
    pycroscope profile --minimal --output-dir out examples/pycroscope_cli/scripts/demo.py

Runs unchanged under plain python3 too: the pycroscope module only exists
inside a host that registers it (the CLI does).
"""
import sys
import threading

try:
    import pycroscope
except ImportError:  # plain python3: no zones
    pycroscope = None


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def parse(lines):
    return [line.split(",") for line in lines]


def worker(count):
    if pycroscope:
        pycroscope.set_thread_name("worker")
    for _ in range(count):
        parse(["a,b,c"] * 100)


def main(n):
    thread = threading.Thread(target=worker, args=(50,))
    thread.start()
    if pycroscope:
        with pycroscope.zone("fibonacci"):
            result = fib(n)
        pycroscope.counter("fib result", result)
        pycroscope.mark("done")
    else:
        result = fib(n)
    thread.join()
    print(f"fib({n}) = {result}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 18)
