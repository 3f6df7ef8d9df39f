"""asyncio: many tasks awaiting each other, queues, an async generator and
gather; every await that suspends is a coroutine resume."""

import asyncio


async def produce(queue, n):
    for i in range(n):
        await queue.put(i)
        if i % 8 == 0:
            await asyncio.sleep(0)
    await queue.put(None)


async def consume(queue):
    total = 0
    while True:
        item = await queue.get()
        if item is None:
            return total
        total += await transform(item)


async def transform(x):
    if x % 16 == 0:
        await asyncio.sleep(0)
    return x * 2 + 1


async def ticker(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def count_ticks(n):
    total = 0
    async for i in ticker(n):
        total += i
    return total


async def pipeline(n):
    queue = asyncio.Queue(maxsize=64)
    results = await asyncio.gather(produce(queue, n), consume(queue), count_ticks(n // 4))
    return results[1] + results[2]


async def amain():
    totals = await asyncio.gather(*(pipeline(5_000) for _ in range(100)))
    return sum(totals)


def main():
    print(asyncio.run(amain()))


if __name__ == "__main__":
    main()
