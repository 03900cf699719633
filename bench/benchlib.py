"""Shared pieces of cachalot's benchmark scripts (Python 3 stdlib only).

- reading a process tree from /proc: PIDs, CPU time (utime + stime), RSS;
- a blocking HTTP/1.1 client that speaks to a proxy in absolute form
  (http.client writes the absolute URL on the request line and derives Host
  from it) or to the origin in origin form;
- an asyncio response reader for the many-connection clients.
"""

import asyncio
import http.client
import json
import os
from urllib.parse import urlsplit

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ /proc

def _stat(pid):
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards),
    or None when the process is gone. The name may contain spaces and
    parentheses, hence the split at the last ')'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def tree(root):
    """`root` and all its descendants (nginx's master and workers...)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if _stat(pid) is not None:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids):
    """User + system CPU time of the processes (all their threads), seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def rss_kib(pids):
    """Sum of VmRSS of the processes, KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


# ------------------------------------------------------------------ HTTP

class Client:
    """One keep-alive connection to 127.0.0.1:`port`. `get(url)` sends the
    absolute URL (proxy form) unless `direct`, then only its path."""

    def __init__(self, port, direct=False, timeout=15):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.direct = direct

    def get(self, url):
        """(status, headers dict with lower-case names, body bytes)."""
        target = url
        if self.direct:
            parts = urlsplit(url)
            target = parts.path + ("?" + parts.query if parts.query else "")
        self.conn.request("GET", target)
        resp = self.conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def close(self):
        self.conn.close()


def get(port, url, direct=False, timeout=15):
    """One GET on a fresh connection: (status, headers, body)."""
    client = Client(port, direct, timeout)
    try:
        return client.get(url)
    finally:
        client.close()


def origin_counts(port):
    """The bench origin's per-route counters (its /count route)."""
    _, _, body = get(port, f"http://127.0.0.1:{port}/count", direct=True)
    return json.loads(body)


def metrics(admin_port):
    """cachalot's Prometheus text from its admin listener as {series: value}."""
    _, _, body = get(admin_port, f"http://127.0.0.1:{admin_port}/metrics", direct=True)
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def request_bytes(url, direct=False):
    """A keep-alive GET of `url`, absolute form unless `direct`."""
    parts = urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    target = path if direct else url
    return f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()


async def read_response(reader):
    """Reads one response from an asyncio StreamReader, body included
    (Content-Length, chunked, or until EOF). Returns (status, body length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if status in (204, 304) or status < 200:
        return status, 0
    if "chunked" in fields.get("transfer-encoding", "").lower():
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailer fields
                return status, total
            await reader.readexactly(size + 2)
            total += size
    if "content-length" in fields:
        length = int(fields["content-length"])
        await reader.readexactly(length)
        return status, length
    return status, len(await reader.read())
