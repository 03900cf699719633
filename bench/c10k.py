#!/usr/bin/env python3
"""Idle client connections: what each one costs the proxy, and whether the
proxy still answers quickly while it holds them.

1. reads the RSS of the proxy's process tree (--pid) ("before");
2. opens --conns connections (at most --parallel connecting at once); each
   sends one GET of --url (a cache hit once warmed), reads the answer, then
   stays open and idle;
3. waits --settle seconds and reads the RSS again ("held");
4. while they are held, sends --probes GETs of --url one after another,
   each on a fresh connection, and times them (connect to last body byte);
5. counts the held connections the proxy has not closed, closes them all.

Prints one JSON object. Needs an open-file limit above --conns (run.sh
raises it).
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
    ap.add_argument("--pid", type=int, required=True, help="the proxy's PID (root of its tree)")
    ap.add_argument("--url", required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--parallel", type=int, default=200)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--settle", type=float, default=1.0)
    args = ap.parse_args()
    host, port = args.proxy.rsplit(":", 1)
    port = int(port)
    request = benchlib.request_bytes(args.url)
    errors = {}

    def count_error(e):
        key = f"{type(e).__name__}: {e}"[:100]
        errors[key] = errors.get(key, 0) + 1

    rss_before = benchlib.rss_kib(benchlib.tree(args.pid))
    gate = asyncio.Semaphore(args.parallel)

    async def open_one():
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 20)
                writer.write(request)
                status, _ = await asyncio.wait_for(benchlib.read_response(reader), 20)
                if status != 200:
                    writer.close()
                    raise RuntimeError(f"status {status}")
                return reader, writer
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError,
                    ValueError, asyncio.LimitOverrunError) as e:
                count_error(e)
                return None

    t0 = time.perf_counter()
    held = [c for c in await asyncio.gather(*(open_one() for _ in range(args.conns))) if c]
    open_s = time.perf_counter() - t0
    await asyncio.sleep(args.settle)
    rss_held = benchlib.rss_kib(benchlib.tree(args.pid))

    probes, probe_errors = [], 0
    for _ in range(args.probes):
        t = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(request)
            status, _ = await asyncio.wait_for(benchlib.read_response(reader), 10)
            probes.append(time.perf_counter() - t)
            writer.close()
            if status != 200:
                probe_errors += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            probe_errors += 1
            count_error(e)

    await asyncio.sleep(0.2)  # lets the loop see any close by the proxy
    alive = sum(1 for r, w in held if not (r.at_eof() or w.is_closing()))
    for _, writer in held:
        writer.close()
    probes.sort()
    opened = len(held)
    print(json.dumps({
        "requested": args.conns,
        "opened": opened,
        "open_s": round(open_s, 2),
        "alive_at_end": alive,
        "rss_before_kib": rss_before,
        "rss_held_kib": rss_held,
        "kib_per_conn": (rss_held - rss_before) / opened if opened else None,
        "probes": len(probes),
        "probe_p50_ms": statistics.median(probes) * 1000 if probes else None,
        "probe_p99_ms": probes[min(len(probes) - 1, int(len(probes) * 0.99))] * 1000 if probes else None,
        "probe_max_ms": probes[-1] * 1000 if probes else None,
        "probe_errors": probe_errors,
        "errors": errors,
    }))


if __name__ == "__main__":
    asyncio.run(main())
