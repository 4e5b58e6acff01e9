"""Running the benchmark: start a peer, warm it, load it with Locust, measure, stop its whole process tree.

Locust runs as a subprocess (never imported: it patches the process) on the same machine, with
the fixed load of ``loadtests/bench_locustfile.py``. Rounds are interleaved (every peer once per
round, odd rounds in reverse order) so slow drift on a shared machine hurts all rows alike.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from botkit.core.config import PACKAGE_DIR
from botkit.ops.bench.peers import Peer
from botkit.ops.loadtest import locust_command, parse_json_output, summarize_stats
from botkit.serving.serve import Server, post_json

__all__ = ["LOCUSTFILE", "Row", "locust", "measure", "median_row", "run_peer", "run_rounds", "stop_tree"]

LOCUSTFILE = PACKAGE_DIR.parent / "loadtests" / "bench_locustfile.py"


@dataclass
class Row:
    """One measured run (or the median of several)."""

    key: str
    label: str
    users: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failures: int
    requests: int
    cpu_cores: float  # server process tree, measured
    rss_mb: float
    workers: int = 0
    extra: dict = field(default_factory=dict)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def locust(url: str, users: int, seconds: float, body: str = "object") -> dict:
    """One headless Locust run of the benchmark load; returns botkit.ops.loadtest's summary dict."""
    cmd = [*locust_command(), "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{max(1, round(seconds))}s", "--host", url, "--json", "--only-summary", "--stop-timeout", "5",
           "--loglevel", "ERROR"]
    env = {**os.environ, "BENCH_BODY": body}
    ru0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 90, env=env)
    ru1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    try:
        summary = summarize_stats(parse_json_output(out.stdout))
    except ValueError:
        raise RuntimeError(f"Locust printed no results (exit {out.returncode}): {out.stderr[-800:]}") from None
    # The load generator shares the cores: its CPU says whether it, not the server, was the limit.
    summary["locust_cores"] = round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall, 2)
    return summary


def batch_sizes(url: str) -> dict:
    """botkit's batch-size histogram from ``/metrics`` (empty for peers that have none)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    found = {s.name: s.value for f in text_string_to_metric_families(text) if f.name == "botkit_predict_batch_size"
             for s in f.samples if s.name.endswith(("_sum", "_count"))}
    count = found.get("botkit_predict_batch_size_count", 0)
    return {"predict_calls": int(count), "mean_batch": round(found.get("botkit_predict_batch_size_sum", 0) / count, 2)
            } if count else {}


def measure(server: Server, peer: Peer, users: int, seconds: float) -> Row:
    """Load ``server`` for ``seconds`` and return the figures, with the server tree's CPU and memory."""
    procs = _tree(server.proc.pid)
    before = batch_sizes(server.url)
    cpu0, t0 = _cpu_seconds(procs), time.monotonic()
    run = locust(server.url, users, seconds, peer.body)
    s = run["total"]
    cpu = (_cpu_seconds(procs) - cpu0) / (time.monotonic() - t0)
    after = batch_sizes(server.url)
    extra = {"locust_cores": run["locust_cores"]}
    if after:
        calls = after["predict_calls"] - before.get("predict_calls", 0)
        extra["mean_batch"] = round(s["requests"] / calls, 2) if calls else 0.0
    return Row(peer.key, peer.label, users, s["rps"], s["p50_ms"], s["p95_ms"], s["p99_ms"], s["failures"],
               s["requests"], round(cpu, 2), round(_rss_mb(procs), 1), peer.workers, extra)


def stop_tree(server: Server) -> list[int]:
    """Stop the server and make sure its whole process tree is gone; returns pids that had to be killed."""
    pids = [p.pid for p in _tree(server.proc.pid)] if server.proc else []
    server.stop()
    leftovers = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                leftovers.append(pid)
                p.kill()
    return leftovers


def warm(server: Server, peer: Peer, seconds: float) -> None:
    msg: object = ["hello"] if peer.body == "list" else "hello"
    post_json(f"{server.url}/chat", {"message": msg}, timeout_s=30)
    if seconds > 0:
        locust(server.url, 16, seconds, peer.body)


def run_peer(peer: Peer, tag: str, *, users: int, seconds: float, warmup_s: float,
             curve_users: tuple[int, ...] = (), curve_s: float = 0.0,
             say: Callable[[str], None] = lambda m: None) -> tuple[Row, list[Row]]:
    """Start ``peer``, warm it, measure it at ``users`` (and optionally a latency-vs-users curve), stop it."""
    server = peer.server(tag)
    server.start()
    pids = [p.pid for p in _tree(server.proc.pid)]
    try:
        warm(server, peer, warmup_s)
        row = measure(server, peer, users, seconds)
        curve = [measure(server, peer, u, curve_s) for u in curve_users]
    finally:
        left = stop_tree(server)
    row.extra["server_pids"] = pids  # all gone now: stop_tree checked (and killed any straggler)
    row.extra["killed_leftovers"] = len(left)
    if left:
        say(f"    WARNING: {len(left)} process(es) of {peer.key} outlived stop() and were killed")
    return row, curve


def run_rounds(peers: tuple[Peer, ...], tag: str, *, rounds: int, users: int, seconds: float, warmup_s: float,
               say: Callable[[str], None]) -> dict[str, list[Row]]:
    """Every peer once per round; odd rounds run the list backwards."""
    results: dict[str, list[Row]] = {p.key: [] for p in peers}
    for rnd in range(rounds):
        order = peers if rnd % 2 == 0 else tuple(reversed(peers))
        for peer in order:
            say(f"  round {rnd + 1}/{rounds}: {peer.label} ...")
            row, _ = run_peer(peer, tag, users=users, seconds=seconds, warmup_s=warmup_s, say=say)
            row.extra["round"] = rnd + 1
            results[peer.key].append(row)
            say(f"    {row.rps:.0f} rps, p50 {row.p50_ms:g} / p95 {row.p95_ms:g} / p99 {row.p99_ms:g} ms, "
                f"{row.failures} failures, {row.cpu_cores} server cores"
                + (f", mean batch {row.extra['mean_batch']}" if "mean_batch" in row.extra else ""))
    return results


def median_row(rows: list[Row]) -> Row:
    """The median of each figure over rounds; failures and requests are summed."""
    def med(attr: str) -> float:
        return round(statistics.median(getattr(r, attr) for r in rows), 2)

    first = rows[0]
    extra = {"rounds": len(rows), "rps_each": [r.rps for r in rows], "p99_each": [r.p99_ms for r in rows]}
    extra["locust_cores"] = round(statistics.median(r.extra.get("locust_cores", 0) for r in rows), 2)
    if all("mean_batch" in r.extra for r in rows):
        extra["mean_batch"] = round(statistics.median(r.extra["mean_batch"] for r in rows), 2)
    return Row(first.key, first.label, first.users, med("rps"), med("p50_ms"), med("p95_ms"), med("p99_ms"),
               sum(r.failures for r in rows), sum(r.requests for r in rows), med("cpu_cores"), med("rss_mb"),
               first.workers, extra)


def machine_load() -> dict:
    """Load averages (1, 5, 15 min) and the busiest other processes: how noisy the machine is right now."""
    la = os.getloadavg()
    return {"loadavg": [round(x, 2) for x in la], "cpus": psutil.cpu_count(), "at": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
