#!/usr/bin/env python3
"""Coalescing: --clients connections send a GET of the same fresh --url at
the same moment (the slow origin answers it after 1 s).

All connections are opened first; then every request is written in one
tight loop, with no await in between, and that loop's start is the "send
moment". Completion of each client = its last body byte, relative to the
send moment. Prints one JSON object: status counts, first (the leader's)
and slowest completion, the lag of the slowest behind the first, p50/p99.
The harness counts the origin requests itself (the origin's /count).
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


async def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxy", required=True, help="host:port of the proxy")
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args()
    host, port = args.proxy.rsplit(":", 1)
    request = benchlib.request_bytes(args.url)
    opened = await asyncio.gather(
        *(asyncio.wait_for(asyncio.open_connection(host, int(port)), 10) for _ in range(args.clients)),
        return_exceptions=True,
    )
    conns = [c for c in opened if not isinstance(c, BaseException)]
    await asyncio.sleep(0.2)  # the proxy has accepted them all by now
    start = 0.0

    async def finish(reader):
        try:
            status, length = await asyncio.wait_for(benchlib.read_response(reader), args.timeout)
            return str(status), time.perf_counter() - start, length
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            return type(e).__name__, None, 0

    readers = [asyncio.ensure_future(finish(r)) for r, _ in conns]
    start = time.perf_counter()
    for _, writer in conns:
        writer.write(request)
    send_ms = (time.perf_counter() - start) * 1000
    results = await asyncio.gather(*readers)
    for _, writer in conns:
        writer.close()
    statuses = {}
    for status, _, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    done = sorted(t for status, t, _ in results if status == "200")
    print(json.dumps({
        "clients": args.clients,
        "connected": len(conns),
        "send_loop_ms": round(send_ms, 2),
        "statuses": statuses,
        "body_lengths": sorted({length for _, _, length in results}),
        "first_ms": done[0] * 1000 if done else None,
        "slowest_ms": done[-1] * 1000 if done else None,
        "lag_ms": (done[-1] - done[0]) * 1000 if done else None,
        "p50_ms": statistics.median(done) * 1000 if done else None,
        "p99_ms": done[min(len(done) - 1, int(len(done) * 0.99))] * 1000 if done else None,
    }))


if __name__ == "__main__":
    asyncio.run(main())
