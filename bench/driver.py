#!/usr/bin/env python3
"""Runs the benchmark scenarios against proxies that bench/run.sh started,
interleaving the candidates round by round (round 1: A B C, round 2: B C A,
...), then prints one table and writes every round to a JSON file.

run.sh owns the processes (it starts and stops them); this script only
connects to them and reads /proc for their CPU time and RSS. Python 3 stdlib.
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import benchlib  # noqa: E402

# Run order. disk runs last: it adds ~94 MiB to cachalot's memory tier,
# which would otherwise show in the RSS of the scenarios after it.
SCENARIOS = ["hit1k", "hit1k-named", "hit1m", "miss", "miss-named", "tunnel", "c10k", "coalesce", "disk"]

# wrk scenarios: path on the origin, connections, URL pattern, origin counter
WRK = {
    "hit1k": ("/1k", 64, "same", "1k"),
    "hit1m": ("/1m", 16, "same", "1m"),
    "miss": ("/nostore/1k", 64, "unique", "nostore"),
    # the same loads with the origin named through the origin's DNS server
    "hit1k-named": ("/1k", 64, "same", "1k"),
    "miss-named": ("/nostore/1k", 64, "unique", "nostore"),
    "disk": ("/obj/", 64, "objects", "obj"),
}

# the name the -named scenarios use for the origin (the DNS server answers
# every name with 127.0.0.1)
ORIGIN_NAME = "origin.bench.test"

# headline metric of each scenario and whether higher is better
HEADLINE = {
    "hit1k": ("req_s", True), "hit1m": ("mib_s", True), "miss": ("req_s", True),
    "hit1k-named": ("req_s", True), "miss-named": ("req_s", True),
    "tunnel": ("mib_s", True), "disk": ("req_s", True),
    "c10k": ("kib_per_conn", False), "coalesce": ("slowest_ms", False),
}

WRK_THREADS = 2
REFERENCE = "squid"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Candidate:
    """A proxy run.sh started: name:port:pid[:admin_port]."""

    def __init__(self, spec):
        parts = spec.split(":")
        self.name = parts[0]
        self.port = int(parts[1])
        self.pid = int(parts[2])
        self.admin = int(parts[3]) if len(parts) > 3 and parts[3] else None

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False


class Sampler(threading.Thread):
    """Peak RSS of the watched process tree, sampled every 100 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.pids = None
        self.peak = 0

    def watch(self, pids):
        with self.lock:
            self.pids = pids
            self.peak = benchlib.rss_kib(pids)

    def stop(self):
        with self.lock:
            self.pids = None
            return self.peak

    def run(self):
        while True:
            with self.lock:
                if self.pids:
                    self.peak = max(self.peak, benchlib.rss_kib(self.pids))
            time.sleep(0.1)


SAMPLER = Sampler()


def measured(cand, fn):
    """Runs fn() while measuring the candidate's process tree. Returns
    (fn's result, {cpu_s, wall_s, peak_rss_kib})."""
    pids = benchlib.tree(cand.pid)
    SAMPLER.watch(pids)
    cpu0 = benchlib.cpu_seconds(pids)
    started = time.time()
    t0 = time.monotonic()
    try:
        out = fn()
    finally:
        wall = time.monotonic() - t0
        cpu = benchlib.cpu_seconds(pids) - cpu0
        peak = SAMPLER.stop()
    return out, {"cpu_s": cpu, "wall_s": wall, "peak_rss_kib": peak, "started_at": started}


def rotated(items, r):
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    m = median(xs)
    return (max(xs) - min(xs)) / m if len(xs) > 1 and m else None


def run_json(cmd, timeout):
    """Runs a helper script; returns the JSON object on its last stdout line."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = out.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"{os.path.basename(cmd[1])} failed (exit {out.returncode}): "
                           f"{out.stderr.strip()[-300:]}") from None


class Bench:
    def __init__(self, args):
        self.a = args
        self.origin = f"127.0.0.1:{args.origin_port}"
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())

    def url(self, path, named=False):
        if named:
            return f"http://{ORIGIN_NAME}:{self.a.origin_port}{path}"
        return f"http://{self.origin}{path}"

    # -------------------------------------------------------------- wrk

    def wrk(self, cand, path, conns, pattern, seconds, tag="", named=False):
        env = dict(os.environ, BENCH_URL=self.url(path, named), BENCH_PATTERN=pattern, BENCH_TAG=tag,
                   BENCH_OBJECTS=str(self.a.disk_objects), BENCH_THREADS=str(WRK_THREADS))
        cmd = ["wrk", "-t", str(WRK_THREADS), "-c", str(conns), "-d", f"{seconds}s",
               "--timeout", "5s", "-s", os.path.join(BENCH, "proxy.lua"),
               f"http://127.0.0.1:{cand.port}/"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30)
        for line in out.stdout.splitlines():
            if line.startswith("BENCHRESULT "):
                return json.loads(line[len("BENCHRESULT "):])
        raise RuntimeError(f"wrk gave no result: {out.stdout[-200:]} {out.stderr[-200:]}")

    def wrk_round(self, scn, cand, r):
        path, conns, pattern, counter = WRK[scn]
        tag = f"{self.stamp}.{cand.name}.{r}"
        before = benchlib.origin_counts(self.a.origin_port)
        m0 = benchlib.metrics(cand.admin) if scn == "disk" and cand.admin else None
        named = scn.endswith("-named")
        res, meas = measured(cand, lambda: self.wrk(cand, path, conns, pattern, self.a.seconds, tag, named))
        after = benchlib.origin_counts(self.a.origin_port)
        res["dns_queries"] = after.get("dns", 0) - before.get("dns", 0)
        res.update(meas)
        res["round"] = r + 1
        secs = res["duration_us"] / 1e6
        res["req_s"] = res["requests"] / secs
        res["mib_s"] = res["bytes"] / secs / 1048576
        res["cpu_us"] = res["cpu_s"] * 1e6 / max(1, res["requests"])
        res["origin_requests"] = after[counter] - before[counter]
        if m0 is not None:
            m1 = benchlib.metrics(cand.admin)

            def delta(code):
                key = f'cachalot_requests_total{{code="{code}"}}'
                return int(m1.get(key, 0) - m0.get(key, 0))
            res["served"] = {"memory_hits": delta("TCP_MEM_HIT"), "disk_hits": delta("TCP_HIT"),
                             "misses": delta("TCP_MISS")}
        return res

    def scenario_wrk(self, scn, cands):
        path, conns, pattern, _ = WRK[scn]
        per = {c.name: {"rounds": []} for c in cands}
        named = scn.endswith("-named")
        for c in cands:  # warm-up: store the object, wake the code paths up
            try:
                if pattern == "same":
                    for _ in range(3):
                        benchlib.get(c.port, self.url(path, named))
                self.wrk(c, path, conns, pattern, self.a.warmup, f"{self.stamp}.{c.name}.warm", named)
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                per[c.name]["error"] = f"warm-up failed: {e}"
        for r in range(self.a.rounds):
            for c in rotated(cands, r):
                if "error" in per[c.name]:
                    continue
                if not c.alive():
                    per[c.name]["error"] = "process exited"
                    continue
                try:
                    per[c.name]["rounds"].append(self.wrk_round(scn, c, r))
                except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as e:
                    per[c.name]["error"] = f"round {r + 1}: {e}"
                time.sleep(0.3)
        for c in cands:
            rounds = per[c.name]["rounds"]
            if not rounds:
                continue
            s = {k: median([x[k] for x in rounds]) for k in ("req_s", "mib_s", "cpu_us")}
            s["p50_ms"] = median([x["p50_us"] / 1000 for x in rounds])
            s["p99_ms"] = median([x["p99_us"] / 1000 for x in rounds])
            s["rss_mib"] = max(x["peak_rss_kib"] for x in rounds) / 1024
            s["cores"] = median([x["cpu_s"] / x["wall_s"] for x in rounds])
            s["requests"] = sum(x["requests"] for x in rounds)
            s["errors"] = sum(x["socket_errors"] + x["timeouts"] + x["status_errors"] for x in rounds)
            s["origin_requests"] = sum(x["origin_requests"] for x in rounds)
            s["dns_queries"] = sum(x.get("dns_queries", 0) for x in rounds)
            s["spread"] = spread([x[HEADLINE[scn][0]] for x in rounds])
            if scn == "disk" and all("served" in x for x in rounds):
                s["served"] = {k: sum(x["served"][k] for x in rounds) for k in rounds[0]["served"]}
            per[c.name]["summary"] = s
        return per

    # -------------------------------------------------------------- tunnel

    def scenario_tunnel(self, cands):
        per = {c.name: {"rounds": []} for c in cands}
        for r in range(self.a.rounds):
            for c in rotated(cands, r):
                if "error" in per[c.name] or "na" in per[c.name]:
                    continue
                cmd = [sys.executable, os.path.join(BENCH, "tunnel.py"), "--proxy", f"127.0.0.1:{c.port}",
                       "--target", self.origin, "--path", "/1m", "--tunnels", str(self.a.tunnels),
                       "--seconds", str(self.a.seconds)]
                try:
                    res, meas = measured(c, lambda: run_json(cmd, self.a.seconds + 60))
                except (RuntimeError, subprocess.SubprocessError) as e:
                    per[c.name]["error"] = str(e)
                    continue
                if not res["gets"] and any(s != 200 for s in res["connect_status"]):
                    per[c.name]["na"] = f"CONNECT answered {sorted({str(s) for s in res['connect_status']})}"
                    continue
                res.update(meas)
                res["round"] = r + 1
                res["cpu_us_per_mib"] = res["cpu_s"] * 1e6 / max(res["mib"], 1e-9)
                per[c.name]["rounds"].append(res)
                time.sleep(0.3)
        for c in cands:
            rounds = per[c.name]["rounds"]
            if rounds:
                per[c.name]["summary"] = {
                    "mib_s": median([x["mib_s"] for x in rounds]),
                    "req_s": median([x["gets"] / x["seconds"] for x in rounds]),
                    "p50_ms": median([x["p50_ms"] for x in rounds]),
                    "p99_ms": median([x["p99_ms"] for x in rounds]),
                    "rss_mib": max(x["peak_rss_kib"] for x in rounds) / 1024,
                    "cpu_us": median([x["cpu_us_per_mib"] for x in rounds]),
                    "cores": median([x["cpu_s"] / x["wall_s"] for x in rounds]),
                    "errors": sum(len(x["errors"]) for x in rounds),
                    "spread": spread([x["mib_s"] for x in rounds]),
                }
        return per

    # -------------------------------------------------------------- c10k

    def scenario_c10k(self, cands):
        per = {}
        for c in cands:
            try:
                for _ in range(2):  # the probes and the held connections' GETs are hits
                    benchlib.get(c.port, self.url("/1k"))
                time.sleep(1.0)
                cmd = [sys.executable, os.path.join(BENCH, "c10k.py"), "--proxy", f"127.0.0.1:{c.port}",
                       "--pid", str(c.pid), "--url", self.url("/1k"), "--conns", str(self.a.c10k_conns),
                       "--probes", str(self.a.probes)]
                res, meas = measured(c, lambda: run_json(cmd, 300))
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                per[c.name] = {"error": str(e)}
                continue
            res.update(meas)
            served = res["opened"] + res["probes"]
            per[c.name] = {"rounds": [res], "summary": {
                "kib_per_conn": res["kib_per_conn"],
                "p50_ms": res["probe_p50_ms"],
                "p99_ms": res["probe_p99_ms"],
                "rss_mib": res["rss_held_kib"] / 1024,
                "rss_before_mib": res["rss_before_kib"] / 1024,
                "cpu_us": res["cpu_s"] * 1e6 / max(1, served),
                "opened": res["opened"],
                "alive": res["alive_at_end"],
                "errors": sum(res["errors"].values()) + res["probe_errors"],
            }}
            time.sleep(1.0)
        return per

    # -------------------------------------------------------------- coalesce

    def scenario_coalesce(self, cands):
        per = {c.name: {"rounds": []} for c in cands}
        slow = self.a.slow_port
        for r in range(self.a.rounds):
            for c in rotated(cands, r):
                if "error" in per[c.name]:
                    continue
                url = f"http://127.0.0.1:{slow}/slow/{self.stamp}-{c.name}-{r}"
                cmd = [sys.executable, os.path.join(BENCH, "coalesce.py"), "--proxy", f"127.0.0.1:{c.port}",
                       "--url", url, "--clients", str(self.a.clients)]
                try:
                    before = benchlib.origin_counts(slow)["slow"]
                    res, meas = measured(c, lambda: run_json(cmd, 120))
                    time.sleep(0.5)  # a late origin request still counts
                    res["origin_requests"] = benchlib.origin_counts(slow)["slow"] - before
                except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                    per[c.name]["error"] = str(e)
                    continue
                res.update(meas)
                res["round"] = r + 1
                per[c.name]["rounds"].append(res)
        for c in cands:
            rounds = per[c.name]["rounds"]
            if rounds:
                per[c.name]["summary"] = {
                    "origin_requests": max(x["origin_requests"] for x in rounds),
                    "ok": min(x["statuses"].get("200", 0) for x in rounds),
                    "first_ms": median([x["first_ms"] for x in rounds]),
                    "slowest_ms": median([x["slowest_ms"] for x in rounds]),
                    "lag_ms": median([x["lag_ms"] for x in rounds]),
                    "p50_ms": median([x["p50_ms"] for x in rounds]),
                    "p99_ms": median([x["p99_ms"] for x in rounds]),
                    "rss_mib": max(x["peak_rss_kib"] for x in rounds) / 1024,
                    # no CPU figure: a round costs a few clock ticks (10 ms
                    # each), too coarse to divide by 200 (cpu_s is in the JSON)
                }
        return per

    # -------------------------------------------------------------- disk

    def fill(self, cand, n):
        """GETs /obj/0 .. n-1 through the candidate on one connection, checking
        each answer; returns the number of wrong answers."""
        client = benchlib.Client(cand.port)
        wrong = 0
        try:
            for k in range(n):
                status, _, body = client.get(self.url(f"/obj/{k}"))
                if status != 200 or len(body) != 65536 or not body.startswith(f"obj {k}\n".encode()):
                    wrong += 1
        finally:
            client.close()
        return wrong

    def scenario_disk(self, mem, disk):
        n = self.a.disk_objects
        info = {"objects": n, "set_mib": n * 64 / 1024}
        disk_key = 'cachalot_cache_entries{tier="disk"}'
        for c in (disk, mem):
            info[f"fill_wrong_{c.name}"] = self.fill(c, n)
        # disk writes happen behind the responses (a queue and one writer
        # thread): wait until the index and entry records of every object
        # are on disk, or until the count stops growing
        deadline, last, still = time.monotonic() + 60, -1, 0
        while time.monotonic() < deadline:
            entries = benchlib.metrics(disk.admin).get(disk_key, 0)
            if entries >= 2 * n:
                break
            still = still + 1 if entries == last else 0
            if still >= 10:
                break
            last = entries
            time.sleep(0.5)
        m = benchlib.metrics(disk.admin)
        info["disk_entries"] = m.get(disk_key, 0)
        info["disk_writes_dropped_after_fill"] = m.get("cachalot_cache_disk_writes_dropped_total", 0)
        # the first object left memory long ago (8 MiB hold ~120): it comes from disk
        _, _, direct = benchlib.get(self.a.origin_port, self.url("/obj/0"), direct=True)
        _, fields, body = benchlib.get(disk.port, self.url("/obj/0"))
        info["check_obj0"] = "ok" if body == direct else f"different body ({len(body)} bytes)"
        info["check_obj0_cache_status"] = fields.get("cache-status")
        per = self.scenario_wrk("disk", [disk, mem])
        m = benchlib.metrics(disk.admin)
        info["disk_writes_dropped_end"] = m.get("cachalot_cache_disk_writes_dropped_total", 0)
        per["_info"] = info
        return per

    # -------------------------------------------------------------- checks

    def check(self, cand):
        """Every candidate must answer /1k and /1m with the origin's bytes,
        twice (a miss, then a hit). Returns None or what was wrong."""
        for path in ("/1k", "/1m"):
            _, _, expected = benchlib.get(self.a.origin_port, self.url(path), direct=True)
            for attempt in (1, 2):
                status, _, body = benchlib.get(cand.port, self.url(path))
                if status != 200 or body != expected:
                    return f"{path} attempt {attempt}: status {status}, {len(body)} bytes"
        return None


# ------------------------------------------------------------------ report

def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def notes_for(scn, name, s, info):
    if scn in ("hit1k", "hit1m", "miss", "disk", "hit1k-named", "miss-named"):
        parts = [f"origin reqs {s['origin_requests']:,}"]
        if scn.startswith("miss"):
            parts[0] += f" of {s['requests']:,}"
        if scn.endswith("-named"):
            parts.append(f"DNS queries {s.get('dns_queries', 0):,}")
            if info.get("literal", {}).get(name):
                parts.append(f"= {100 * s['req_s'] / info['literal'][name]:.0f}% of IP-literal req/s")
        if s["errors"]:
            parts.append(f"ERRORS {s['errors']:,}")
        if s.get("served"):
            sv = s["served"]
            total = max(1, sum(sv.values()))
            parts.append(f"disk hits {100 * sv['disk_hits'] / total:.0f}%, mem hits "
                         f"{100 * sv['memory_hits'] / total:.0f}%")
        if scn == "disk" and info.get("ratio") is not None and name == info.get("disk_name"):
            parts.insert(0, f"= {100 * info['ratio']:.0f}% of the memory tier's req/s")
    elif scn == "tunnel":
        parts = ["CPU per MiB"]
        if s["errors"]:
            parts.append(f"errors {s['errors']}")
    elif scn == "c10k":
        parts = [f"{s['opened']:,} held, {s['alive']:,} alive", f"RSS {s['rss_before_mib']:.0f}->"
                 f"{s['rss_mib']:.0f} MiB = {fmt(s['kib_per_conn'], 1)} KiB/conn", "p50/p99 of probes"]
        if s["errors"]:
            parts.append(f"errors {s['errors']}")
    else:
        parts = [f"origin reqs {s['origin_requests']}", f"{s['ok']} x 200",
                 f"first {fmt(s['first_ms'])} ms, slowest {fmt(s['slowest_ms'])} ms (+{fmt(s['lag_ms'])})"]
    if s.get("spread") is not None:
        parts.append(f"spread {100 * s['spread']:.0f}%")
    return "; ".join(parts)


def table(results, order):
    cols = ["scenario", "proxy", "req/s", "MiB/s", "p50 ms", "p99 ms", "RSS MiB", "CPU us/req",
            "x squid", "CPU x squid", "notes"]
    rows = []
    for scn, per in results["scenarios"].items():
        info = per.get("_info", {})
        key, _ = HEADLINE[scn]
        ref = per.get(REFERENCE, {}).get("summary")
        names = [n for n in order if n in per] + [n for n in per if n not in order and not n.startswith("_")]
        for name in names:
            entry = per[name]
            s = entry.get("summary")
            label = name
            if scn == "disk":
                label = name + (" (disk tier)" if name == info.get("disk_name") else " (memory tier)")
            if not s:
                why = entry.get("na") or entry.get("error") or "no result"
                rows.append([scn, label, "n/a" if entry.get("na") else "-"] + ["-"] * 7 + [why[:90]])
                continue
            ratio = cpu_ratio = "-"
            if ref:
                if s.get(key) is not None and ref.get(key):
                    ratio = f"{s[key] / ref[key]:.2f}"
                if s.get("cpu_us") is not None and ref.get("cpu_us"):
                    cpu_ratio = f"{s['cpu_us'] / ref['cpu_us']:.2f}"
            rows.append([scn, label, fmt(s.get("req_s")), fmt(s.get("mib_s"), 1), fmt(s.get("p50_ms"), 2),
                         fmt(s.get("p99_ms"), 2), fmt(s.get("rss_mib"), 1), fmt(s.get("cpu_us"), 1),
                         ratio, cpu_ratio, notes_for(scn, name, s, info)])
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines.append("-" * len(lines[0]))
    last = None
    for r in rows:
        if last is not None and r[0] != last:
            lines.append("")
        last = r[0]
        lines.append("  ".join(c.ljust(w) if i in (0, 1, 10) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def versions(cachalot_bin):
    cmds = {"squid": ["squid", "-v"], "nginx": ["nginx", "-v"], "wrk": ["wrk", "--version"],
            "cachalot": [cachalot_bin, "--version"],
            "cachalot_git": ["git", "-C", BENCH, "describe", "--always", "--dirty"]}
    out = {}
    for name, cmd in cmds.items():
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            text = (p.stdout + p.stderr).strip().splitlines()
            out[name] = text[0] if text else ""
        except (OSError, subprocess.SubprocessError):
            out[name] = None
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--candidate", action="append", default=[], help="name:port:pid[:admin_port]")
    ap.add_argument("--skipped", action="append", default=[], help="name:why it is not running")
    ap.add_argument("--disk", help="the small-memory cachalot: name:port:pid:admin_port")
    ap.add_argument("--scenarios", required=True, help="comma-separated")
    ap.add_argument("--origin-port", type=int, required=True)
    ap.add_argument("--slow-port", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--tunnels", type=int, default=4)
    ap.add_argument("--c10k-conns", type=int, default=10000)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--disk-objects", type=int, default=1500)
    ap.add_argument("--cachalot-bin", default="cachalot")
    ap.add_argument("--results", required=True, help="folder of the JSON files")
    args = ap.parse_args()
    # run.sh stops this script with SIGTERM: unwind, so that subprocess.run
    # kills the wrk or helper it is waiting for
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    bench = Bench(args)
    scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    cands = [Candidate(s) for s in args.candidate]
    order = [c.name for c in cands]
    SAMPLER.start()

    results = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                 "loadavg_start": loadavg()},
        "settings": {k: v for k, v in vars(args).items() if k not in ("candidate", "skipped", "disk")},
        "versions": versions(args.cachalot_bin),
        "candidates": {}, "scenarios": {},
    }
    for spec in args.skipped:
        name, _, why = spec.partition(":")
        results["candidates"][name] = {"error": why}
    active = []
    for c in cands:
        entry = {"port": c.port, "pid": c.pid, "admin_port": c.admin}
        try:
            entry["error"] = bench.check(c)
        except (OSError, ValueError) as e:
            entry["error"] = f"check failed: {e}"
        results["candidates"][c.name] = entry
        if entry["error"]:
            log(f"{c.name} excluded: {entry['error']}")
        else:
            active.append(c)
    log("candidates: " + ", ".join(c.name for c in active))
    disk = Candidate(args.disk) if args.disk else None
    if disk:
        results["candidates"][disk.name] = {"port": disk.port, "pid": disk.pid, "admin_port": disk.admin}

    for scn in scenarios:
        log(f"scenario {scn}")
        load0 = loadavg()
        t0 = time.monotonic()
        if scn in WRK and scn != "disk":
            per = bench.scenario_wrk(scn, active)
            literal = results["scenarios"].get(scn[: -len("-named")]) if scn.endswith("-named") else None
            if literal:
                per["_info"] = {"literal": {n: e["summary"]["req_s"] for n, e in literal.items()
                                            if not n.startswith("_") and e.get("summary")}}
        elif scn == "tunnel":
            per = bench.scenario_tunnel(active)
        elif scn == "c10k":
            per = bench.scenario_c10k(active)
        elif scn == "coalesce":
            per = bench.scenario_coalesce(active)
        else:
            mem = next((c for c in active if c.name == "cachalot"), None)
            if not mem or not disk:
                log("disk: skipped (needs the cachalot candidate and its small-memory twin)")
                continue
            per = bench.scenario_disk(mem, disk)
            ds, ms = per[disk.name].get("summary"), per[mem.name].get("summary")
            per["_info"]["disk_name"] = disk.name
            if ds and ms and ms["req_s"]:
                per["_info"]["ratio"] = ds["req_s"] / ms["req_s"]
        per["_meta"] = {"loadavg_before": load0, "loadavg_after": loadavg(),
                        "seconds": round(time.monotonic() - t0, 1)}
        results["scenarios"][scn] = per
    results["host"]["loadavg_end"] = loadavg()

    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, f"{bench.stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    v = results["versions"]
    print()
    print(f"# {results['date_utc']} UTC, {os.cpu_count()} CPUs, load {results['host']['loadavg_start']} -> "
          f"{results['host']['loadavg_end']}; {args.rounds} round(s) x {args.seconds} s, interleaved")
    print(f"# {v.get('cachalot')} ({v.get('cachalot_git')}); {v.get('squid')}; {v.get('nginx')}")
    for name, entry in results["candidates"].items():
        if entry.get("error"):
            print(f"# {name}: not measured: {entry['error']}")
    print()
    print(table(results, order + ([disk.name] if disk else [])))
    print()
    print("req/s and MiB/s (2^20 bytes, headers included) are medians over rounds; p50/p99 ms: wrk's, or the "
          "helper's (tunnel: per 1 MiB GET; c10k: probes; coalesce: completions).")
    print("RSS: peak of the process tree during the scenario (c10k: while holding). CPU us/req: CPU time "
          "(utime+stime) of the proxy's process tree / requests (tunnel: per MiB).")
    print("x squid: headline / Squid's (req/s, MiB/s; c10k KiB/conn and coalesce slowest ms: lower is better); "
          "CPU x squid: CPU us/req / Squid's (lower is better).")
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
