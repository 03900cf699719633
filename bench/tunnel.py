#!/usr/bin/env python3
"""CONNECT tunnel throughput: --tunnels threads each open one tunnel through
the proxy (CONNECT <target>), then GET --path inside it over and over on the
same (keep-alive) connection until --seconds have passed. Prints one JSON
object: body MiB/s, GETs, per-GET latency, CONNECT statuses, errors.

Blocking sockets in threads: recv_into() releases the GIL and reads into one
preallocated buffer, so the client spends little CPU per byte.
"""

import argparse
import json
import socket
import statistics
import threading
import time

BUF = 1 << 20


def read_head(sock, pending):
    """Reads until the end of a response head. Returns (status, length or
    None, bytes received after the head)."""
    data = bytearray(pending)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a complete response head")
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, length, rest


def worker(args, deadline, out):
    buf = bytearray(BUF)
    view = memoryview(buf)
    try:
        host, port = args.proxy.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"CONNECT {args.target} HTTP/1.1\r\nHost: {args.target}\r\n\r\n".encode())
        status, _, pending = read_head(sock, b"")
        out["connect_status"] = status
        if status != 200:
            raise ConnectionError(f"CONNECT answered {status}")
        request = f"GET {args.path} HTTP/1.1\r\nHost: {args.target}\r\n\r\n".encode()
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            sock.sendall(request)
            status, length, pending = read_head(sock, pending)
            if status != 200 or length is None:
                raise ConnectionError(f"GET in the tunnel: status {status}, length {length}")
            got = min(len(pending), length)
            pending = pending[got:]
            while got < length:
                n = sock.recv_into(view, min(BUF, length - got))
                if n == 0:
                    raise ConnectionError("closed in the middle of a body")
                got += n
            out["bytes"] += length
            out["latencies"].append(time.perf_counter() - t0)
        sock.close()
    except (OSError, ValueError, IndexError) as e:
        out["error"] = f"{type(e).__name__}: {e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxy", required=True, help="host:port of the proxy")
    ap.add_argument("--target", required=True, help="host:port to tunnel to")
    ap.add_argument("--path", default="/1m")
    ap.add_argument("--tunnels", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    start = time.monotonic()
    deadline = start + args.seconds
    outs = [{"bytes": 0, "latencies": [], "connect_status": None, "error": None}
            for _ in range(args.tunnels)]
    threads = [threading.Thread(target=worker, args=(args, deadline, o), daemon=True) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 20)
    elapsed = time.monotonic() - start
    lat = sorted(x for o in outs for x in o["latencies"])
    total = sum(o["bytes"] for o in outs)
    print(json.dumps({
        "tunnels": args.tunnels,
        "seconds": round(elapsed, 3),
        "body_bytes": total,
        "mib": total / 1048576,
        "mib_s": total / 1048576 / elapsed,
        "gets": len(lat),
        "p50_ms": statistics.median(lat) * 1000 if lat else None,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
        "connect_status": [o["connect_status"] for o in outs],
        "errors": [o["error"] for o in outs if o["error"]],
    }))


if __name__ == "__main__":
    main()
