"""Fault drills on a running cluster, each under Locust load through HAProxy, each with figures.

* ``kill``: kill -9 of one replica's whole process tree. Targets: 0 failed client requests
  (HAProxy retries what never reached a live replica), 0 chats acknowledged but not stored,
  the replica back (supervisord restarts it) and healthy.
* ``redis-down``: Redis stopped for ``fault_s``. Targets: no 500 (every refusal a 503 with
  Retry-After), 0 acknowledged-not-stored, events flow again after Redis returns.
* ``redis-hang``: Redis frozen (SIGSTOP) for ``fault_s``. Targets: ``/chat`` p99 under 1 s,
  no 500, 0 acknowledged-not-stored.

"Acknowledged" means HTTP 200 from ``/chat``: with durable acks its event is stored first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from botkit.core.config import settings
from botkit.ops.cluster.cluster import Cluster
from botkit.ops.loadtest import locust_command, parse_json_output, summarize_stats

__all__ = ["DRILLS", "run_drill"]

DRILLS = ("kill", "redis-down", "redis-hang")
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
P99_TARGET_MS = 1000.0


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _read_answers(prefix: Path) -> list[tuple[int, str, str, float]]:
    rows = []
    for path in prefix.parent.glob(prefix.name + ".*"):
        for line in path.read_text().splitlines():
            status, rid, retry_after, ms = line.split("\t")
            rows.append((int(status), rid, retry_after, float(ms)))
    return rows


def _missing(cluster: Cluster, request_ids: list[str]) -> int:
    """Acknowledged chats that the shared store does not hold."""
    from botkit.serving.events import RedisStore

    store = RedisStore(cluster.redis_url, socket_timeout_s=10)
    try:
        return sum(1 for ok in store.has_chats(request_ids) if not ok)
    finally:
        store.close()


def _stream_length(cluster: Cluster) -> int | None:
    import redis

    try:
        return int(redis.Redis.from_url(cluster.redis_url, socket_timeout=0.5).xlen("botkit:events"))
    except redis.RedisError:
        return None


def _fault(cluster: Cluster, kind: str, fault_s: float, marks: dict[str, Any]) -> None:
    """Apply the fault and undo it; write what happened and when into ``marks``."""
    marks["fault_at"] = time.monotonic()
    if kind == "kill":
        victim = cluster.specs[0].name
        marks["killed_pid"] = cluster.kill_replica(victim)
        marks["replica"] = victim
        time.sleep(1.5)  # supervisord notices, HAProxy's checks mark it down
        cluster.wait_healthy(120, names=[victim])
        marks["recovered_s"] = round(time.monotonic() - marks["fault_at"], 2)
        marks["new_pid"] = cluster.pid(victim)
        return
    if kind == "redis-down":
        cluster.stop_program("redis")
        time.sleep(fault_s)
        marks["restored_at"] = time.monotonic()
        cluster.start_program("redis")
    else:  # redis-hang
        pid = cluster.pid("redis")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(fault_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        marks["restored_at"] = time.monotonic()
    before = _stream_length(cluster)
    while time.monotonic() - marks["restored_at"] < 60:  # events flow again: the stream grows
        now = _stream_length(cluster)
        if now is not None and before is not None and now > before:
            marks["recovered_s"] = round(time.monotonic() - marks["restored_at"], 2)
            return
        before = now if before is None else before
        time.sleep(0.1)
    marks["recovered_s"] = None


def run_drill(cluster: Cluster, kind: str, *, users: int = 16, duration_s: float = 40.0, fault_s: float = 10.0,
              warmup_s: float | None = None, out_dir: Path | None = None) -> dict[str, Any]:
    """Run one drill; returns its figures and whether every target was met (``targets_met``)."""
    if kind not in DRILLS:
        raise ValueError(f"unknown drill {kind!r}: {DRILLS}")
    out_dir = Path(out_dir or settings.new_report_dir("drill", kind))
    out_dir.mkdir(parents=True, exist_ok=True)
    acks = out_dir / "answers"
    warmup_s = duration_s * 0.25 if warmup_s is None else warmup_s
    cmd = [*locust_command(), "-f", str(LOCUSTFILE), "--headless", "--host", cluster.lb_url, "-u", str(users),
           "-r", str(users), "-t", f"{int(duration_s)}s", "--json", "--only-summary", "--acks-file", str(acks),
           "--stop-timeout", "10"]
    log = (out_dir / "locust.log").open("w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, **settings.env()}, start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    marks: dict[str, Any] = {}
    try:
        time.sleep(warmup_s)
        _fault(cluster, kind, fault_s, marks)
        proc.wait(timeout=duration_s + 120)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        log.close()
    reader.join(10)
    (out_dir / "locust.json").write_text("".join(output))
    return _figures(cluster, kind, users, duration_s, fault_s, marks, _read_answers(acks),
                    summarize_stats(parse_json_output("".join(output))))


def _figures(cluster: Cluster, kind: str, users: int, duration_s: float, fault_s: float, marks: dict[str, Any],
             answers: list[tuple[int, str, str, float]], summary: dict[str, Any]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for status, *_ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    acked = [rid for status, rid, _, _ in answers if status == 200 and rid]
    refused_without_retry_after = sum(1 for s, _, ra, _ in answers if s == 503 and not ra)
    latencies = [ms for *_, ms in answers]
    total = summary.get("total", summary)
    figures: dict[str, Any] = {
        "drill": kind, "users": users, "duration_s": duration_s,
        "fault_s": None if kind == "kill" else fault_s, "replicas": len(cluster.specs),
        "requests": len(answers), "failed_requests": int(total.get("num_failures", 0) or 0),
        "statuses": statuses, "http_500": sum(n for s, n in statuses.items() if s.startswith("5") and s != "503"),
        "http_503": statuses.get("503", 0), "http_503_without_retry_after": refused_without_retry_after,
        "acked_chats": len(acked), "acked_not_stored": _missing(cluster, acked),
        "p50_ms": _percentile(latencies, 0.50), "p95_ms": _percentile(latencies, 0.95),
        "p99_ms": _percentile(latencies, 0.99), "max_ms": max(latencies) if latencies else None,
        "recovered_s": marks.get("recovered_s"),
    }
    if kind == "kill":
        figures |= {"killed": marks.get("replica"), "killed_pid": marks.get("killed_pid"),
                    "new_pid": marks.get("new_pid")}
        targets = {"no failed requests": figures["failed_requests"] == 0,
                   "replica back and healthy": figures["recovered_s"] is not None}
    elif kind == "redis-down":
        targets = {"no 500": figures["http_500"] == 0 and figures["failed_requests"] == 0,
                   "every 503 has Retry-After": refused_without_retry_after == 0,
                   "events flow after Redis returns": figures["recovered_s"] is not None}
    else:
        targets = {"p99 under 1 s": (figures["p99_ms"] or 0) < P99_TARGET_MS,
                   "no 500": figures["http_500"] == 0 and figures["failed_requests"] == 0,
                   "events flow after Redis resumes": figures["recovered_s"] is not None}
    targets["0 acked-not-stored"] = figures["acked_not_stored"] == 0
    targets["load ran"] = figures["acked_chats"] > 0
    figures["targets"] = targets
    figures["targets_met"] = all(targets.values())
    return figures
