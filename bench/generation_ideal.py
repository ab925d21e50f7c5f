#!/usr/bin/env python3
"""The floor for the generation-only workload: the same 3N requests from one asyncio loop over
one raw aiohttp session, no framework. 3 lanes (m1, m2, m3), each `--concurrency` requests in
flight (50 = distilabel's input_batch_size), continuous (no batch barrier)."""

import asyncio
import time

T_START = time.time()

import aiohttp  # noqa: E402
from generation_common import instructions, parse_args, report  # noqa: E402


async def lane(session, url, model, rows, concurrency, max_tokens, results):
    gate = asyncio.Semaphore(concurrency)

    async def one(i, text):
        async with gate:
            body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
            for _ in range(7):
                async with session.post(url, json=body) as resp:
                    if resp.status == 200:
                        data = await resp.json()
                        results[i][model] = data["choices"][0]["message"]["content"]
                        return
                await asyncio.sleep(0.5)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(rows)))


async def main_async(args):
    rows = instructions(args.n)
    results = [{} for _ in rows]
    url = args.base_url.rstrip("/") + "/chat/completions"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(lane(session, url, m, rows, args.concurrency, args.max_new_tokens, results) for m in ("m1", "m2", "m3")))
    return sum(1 for r in results if len(r) == 3)


def main():
    args = parse_args((("--concurrency",), {"type": int, "default": 50, "help": "requests in flight per model"}))
    t0 = time.time()
    valid = asyncio.run(main_async(args))
    report(args, T_START, t0, valid_rows=valid)


if __name__ == "__main__":
    main()
