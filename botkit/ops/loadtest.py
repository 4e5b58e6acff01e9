"""Run the Locust load test as a child process and turn its output into a report.

Locust cannot be imported in a Jupyter kernel (its gevent monkey-patching hangs the kernel,
Locust #2770), so this module never imports it: ``run_loadtest`` starts
``locust -f loadtests/locustfile.py --headless ...`` as a subprocess, follows the
``--csv-full-history`` time series while it runs (one progress line every few seconds), and
afterwards parses the ``--json`` output, which is complete (the final ``_stats.csv`` misses
about the last second). Results land in ``reports/loadtest/<timestamp>/``: summary.json,
summary.md, loadtest.png, plus Locust's own CSV, HTML and log files.

The SLO gate lives in the locustfile (``events.quitting`` sets Locust's exit code), so a
plain ``locust`` run in CI and ``run_loadtest`` give the same verdict; both use the pure
helpers below (``load_slo``, ``summarize_stats``, ``check_slo``) so the figures agree.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botkit.core.config import PACKAGE_DIR, settings

__all__ = [
    "DEFAULT_SLO_PATH",
    "LOCUSTFILE",
    "SHAPES",
    "SLO_KEYS",
    "LoadTestError",
    "LoadTestResult",
    "check_slo",
    "load_slo",
    "locust_command",
    "parse_json_output",
    "per_second",
    "percentile",
    "plot_loadtest",
    "run_loadtest",
    "slo_met_line",
    "summarize_stats",
    "summary_table",
]

LOADTEST_DIR = PACKAGE_DIR.parent / "loadtests"
LOCUSTFILE = LOADTEST_DIR / "locustfile.py"
DEFAULT_SLO_PATH = LOADTEST_DIR / "slo.yaml"
SHAPES = ("step", "spike", "soak")  # must match loadtests/shapes.py (kept free of Locust imports here)
SLO_KEYS = ("max_failure_ratio", "max_p95_ms", "max_p99_ms", "min_rps")
PROGRESS_EVERY_S = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_WORKER_LINE = re.compile(r"loadtest worker (\S+) sent (\d+) requests")
_FAILURE_LINE = re.compile(r"^loadtest failure (\{.*\})$", re.MULTILINE)
_SLO_LINE = re.compile(r"^(SLO broken: .*|SLO met.*)$", re.MULTILINE)


class LoadTestError(RuntimeError):
    """Locust did not produce results; the message carries the tail of its log."""


# ---------------------------------------------------------------------------------------- figures


def percentile(response_times: Mapping[Any, int], num_requests: int, q: float) -> float:
    """Locust's own percentile over its rounded buckets, so our figures equal its figures."""
    buckets = {float(k): int(v) for k, v in response_times.items()}  # JSON made the int keys strings
    wanted = int(num_requests * q)
    seen = 0
    for rt in sorted(buckets, reverse=True):
        seen += buckets[rt]
        if num_requests - seen <= wanted:
            return rt
    return 0.0


def _figures(method: str, reqs: int, fails: int, none_reqs: int, total_rt: float, min_rt: float | None,
             max_rt: float, buckets: Mapping[Any, int], window_s: float) -> dict[str, Any]:
    timed = max(reqs - none_reqs, 0)
    return {
        "method": method,
        "requests": reqs,
        "failures": fails,
        "failure_ratio": round(fails / reqs, 6) if reqs else (1.0 if fails else 0.0),
        "rps": round(reqs / window_s, 3) if window_s > 0 else 0.0,
        "failures_per_s": round(fails / window_s, 3) if window_s > 0 else 0.0,
        "avg_ms": round(total_rt / timed, 3) if timed else 0.0,
        "min_ms": round(min_rt or 0.0, 3),
        "p50_ms": percentile(buckets, reqs, 0.50),
        "p95_ms": percentile(buckets, reqs, 0.95),
        "p99_ms": percentile(buckets, reqs, 0.99),
        "max_ms": round(max_rt or 0.0, 3),
    }


def summarize_stats(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Total and per-endpoint figures from Locust's stats entries (``--json`` or ``StatsEntry.serialize()``).

    RPS is requests over the whole test window (first request to last), as Locust computes it;
    percentiles merge the rounded buckets of every endpoint, as Locust's "Aggregated" row does.
    """
    entries = [e for e in entries if e.get("num_requests") or e.get("num_failures")]
    starts = [e["start_time"] for e in entries if e.get("start_time")]
    ends = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    window = (max(ends) - min(starts)) if starts and ends else 0.0
    merged: dict[float, int] = {}
    endpoints: dict[str, dict[str, Any]] = {}
    for e in entries:
        buckets = {float(k): int(v) for k, v in (e.get("response_times") or {}).items()}
        for k, v in buckets.items():
            merged[k] = merged.get(k, 0) + v
        key = e["name"] if not any(o["name"] == e["name"] and o is not e for o in entries) \
            else f"{e['method']} {e['name']}"
        endpoints[key] = _figures(e.get("method") or "", e["num_requests"], e["num_failures"],
                                  e.get("num_none_requests", 0), e.get("total_response_time", 0),
                                  e.get("min_response_time"), e.get("max_response_time", 0), buckets, window)
    mins = [e["min_response_time"] for e in entries if e.get("min_response_time") is not None]
    total = _figures("", sum(e["num_requests"] for e in entries), sum(e["num_failures"] for e in entries),
                     sum(e.get("num_none_requests", 0) for e in entries),
                     sum(e.get("total_response_time", 0) for e in entries), min(mins) if mins else None,
                     max((e.get("max_response_time", 0) for e in entries), default=0), merged, window)
    return {"total": total, "endpoints": dict(sorted(endpoints.items())), "window_s": round(window, 3)}


# ---------------------------------------------------------------------------------------- the SLO gate


def load_slo(path: Path | str | None = None) -> dict[str, Any]:
    """Read and check the thresholds file; an unknown key is an error, not a silently ignored typo."""
    import yaml

    p = Path(path) if path else DEFAULT_SLO_PATH
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ValueError(f"SLO file {p} not found") from None
    if not isinstance(doc, dict):
        raise ValueError(f"SLO file {p}: expected a mapping of thresholds, got {type(doc).__name__}")

    def check(block: Mapping[str, Any], where: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for k, v in block.items():
            if k not in SLO_KEYS:
                raise ValueError(f"SLO file {p}: unknown threshold {where}{k!r}; expected {', '.join(SLO_KEYS)}")
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
                raise ValueError(f"SLO file {p}: {where}{k} must be a number >= 0 or null, got {v!r}")
            out[k] = None if v is None else float(v)
        return out

    endpoints = doc.pop("endpoints", None) or {}
    slo: dict[str, Any] = check(doc, "")
    if not isinstance(endpoints, dict):
        raise ValueError(f"SLO file {p}: 'endpoints' must map endpoint names to thresholds")
    slo["endpoints"] = {name: check(block or {}, f"endpoints.{name}.") for name, block in endpoints.items()}
    slo["source"] = str(p)
    return slo


def check_slo(summary: Mapping[str, Any], slo: Mapping[str, Any]) -> list[str]:
    """One line per broken threshold (empty list: SLO met). A run without requests never passes."""
    total = summary["total"]
    if not total["requests"]:
        return ["SLO broken: no requests were made, so no threshold can be checked"]
    broken = _broken(total, slo, "")
    for name, block in (slo.get("endpoints") or {}).items():
        fig = summary["endpoints"].get(name)
        if fig is None:
            broken.append(f"SLO broken: endpoints.{name}: no requests to {name} were made")
        else:
            broken += _broken(fig, block, f"endpoints.{name}.")
    return broken


def _broken(fig: Mapping[str, Any], slo: Mapping[str, Any], where: str) -> list[str]:
    out = []
    if (lim := slo.get("max_failure_ratio")) is not None and fig["failure_ratio"] > lim:
        out.append(f"SLO broken: {where}max_failure_ratio {lim:g}: failure ratio was {fig['failure_ratio']:.4f} "
                   f"({fig['failures']} of {fig['requests']} requests)")
    for q in ("p95", "p99"):
        if (lim := slo.get(f"max_{q}_ms")) is not None and fig[f"{q}_ms"] > lim:
            out.append(f"SLO broken: {where}max_{q}_ms {lim:g}: {q} was {fig[f'{q}_ms']:g} ms")
    if (lim := slo.get("min_rps")) is not None and fig["rps"] < lim:
        out.append(f"SLO broken: {where}min_rps {lim:g}: throughput was {fig['rps']:.1f} requests/s")
    return out


def slo_met_line(summary: Mapping[str, Any]) -> str:
    """The verdict line when nothing is broken, with the figures it was judged on."""
    t = summary["total"]
    return (f"SLO met: {t['requests']} requests, failure ratio {t['failure_ratio']:.4f}, p95 {t['p95_ms']:g} ms, "
            f"p99 {t['p99_ms']:g} ms, {t['rps']:.1f} requests/s")


# ---------------------------------------------------------------------------------------- running it


@dataclass
class LoadTestResult:
    """What one run produced: the summary dict, the gate's exit code, and where the files are."""

    summary: dict[str, Any]
    exit_code: int
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def slo_lines(self) -> list[str]:
        return list(self.summary.get("slo", {}).get("lines", []))


def _out_dir(out_dir: Path | None) -> Path:
    return settings.new_report_dir("loadtest", out_dir=out_dir)


def locust_command() -> list[str]:
    """Locust as a subprocess from this environment (never imported: it patches the process)."""
    exe = Path(sys.executable).with_name("locust")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "locust"]


def _read_history(path: Path) -> list[dict[str, str]]:
    """Rows of the ``--csv-full-history`` file; tolerant of a half-written last line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]
    return list(csv.DictReader(lines))


def _num(value: str | None) -> float:
    try:
        x = float(value)  # "N/A" before the first request
    except (TypeError, ValueError):
        return math.nan
    return x


def _progress_line(history: Path, elapsed: float) -> str:
    """Elapsed, users, RPS and failures/s over the last ~5 s (count deltas), p95 (Locust's 10 s window)."""
    rows = [r for r in _read_history(history) if r.get("Name") == "Aggregated"]
    if not rows:
        return f"[loadtest] {elapsed:6.1f} s  starting ..."
    last, prev = rows[-1], rows[max(0, len(rows) - 6)]
    dt = _num(last["Timestamp"]) - _num(prev["Timestamp"])

    def rate(col: str) -> float:
        return (_num(last[col]) - _num(prev[col])) / dt if dt > 0 else math.nan

    users, p95 = _num(last.get("User Count")), _num(last.get("95%"))
    return (f"[loadtest] {elapsed:6.1f} s  users {0 if math.isnan(users) else int(users):4d}  "
            f"rps {rate('Total Request Count'):7.1f}  failures/s {rate('Total Failure Count'):5.1f}  "
            f"p95 {'-' if math.isnan(p95) or not p95 else f'{p95:g}'} ms  "
            f"requests {last.get('Total Request Count', '?')}")


def parse_json_output(text: str) -> list[dict[str, Any]]:
    """The master's stats from Locust's ``--json`` stdout: a list of raw entries (no percentiles, no total).

    With ``--processes`` every forked worker prints its own (empty) list to the same stdout
    before the master prints the real one, so the last non-empty list wins.
    """
    decoder = json.JSONDecoder()
    found: list[list[dict[str, Any]]] = []
    i = text.find("[")
    while i >= 0:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("[", i + 1)
            continue
        if isinstance(value, list):
            found.append(value)
        i = text.find("[", end)
    if not found:
        raise ValueError("no JSON list in Locust's stdout")
    return next((v for v in reversed(found) if v), found[-1])


def _failures(log: str) -> list[dict[str, Any]]:
    """Failure reasons the locustfile printed at quit ("loadtest failure {json}"): complete, unlike the CSV."""
    out = []
    for line in _FAILURE_LINE.findall(log):
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def _check_host(host: str, allow_remote: bool) -> None:
    from urllib.parse import urlsplit

    name = urlsplit(host).hostname or ""
    if not allow_remote and name not in LOOPBACK and f"[{name}]" not in LOOPBACK:
        raise ValueError(f"refusing to load-test {host}: only loopback hosts unless allow_remote=True")


def run_loadtest(host: str | None = None, *, users: int = 10, spawn_rate: float = 5, duration_s: float = 20,
                 shape: str | None = None, think_time_s: float = 0.0, slo: Path | None = None,
                 out_dir: Path | None = None, processes: int | None = None, progress: bool = True,
                 model: str | None = None, allow_remote: bool = False) -> LoadTestResult:
    """Load-test ``host`` (or a service started here with ``model``) and write the report.

    ``shape`` picks a load shape from loadtests/shapes.py (``users`` is then its peak,
    ``duration_s`` its length, and ``spawn_rate`` is ignored: each shape sets its own);
    ``processes`` runs Locust distributed (a master plus that many worker processes on this
    machine); ``model`` is the tag to serve when the service is started here. ``exit_code``
    is Locust's: non-zero when the SLO in ``slo`` (default ``LOADTEST_SLO``, else
    loadtests/slo.yaml) is broken. Only loopback hosts unless ``allow_remote``.
    """
    if shape is not None and shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    if users < 1 or spawn_rate <= 0 or duration_s <= 0 or think_time_s < 0:
        raise ValueError("users >= 1, spawn_rate > 0, duration_s > 0 and think_time_s >= 0 are required")
    # absolute: Locust runs with the report folder as its working directory
    slo_path = (Path(slo) if slo else settings.from_env().loadtest_slo or DEFAULT_SLO_PATH).resolve()
    slo_doc = load_slo(slo_path)  # fail before starting anything
    if host is not None:
        _check_host(host, allow_remote)
        return _run(host, users, spawn_rate, duration_s, shape, think_time_s, slo_path, slo_doc, out_dir,
                    processes, progress, server=None)
    from botkit.serving.serve import Server

    with Server(model=model) as srv:
        if progress:
            print(f"[loadtest] service up at {srv.url} (log {srv.log_path})", flush=True)
        return _run(srv.url, users, spawn_rate, duration_s, shape, think_time_s, slo_path, slo_doc, out_dir,
                    processes, progress, server={"started_here": True, "model": model, "log": str(srv.log_path)})


def _run(host: str, users: int, spawn_rate: float, duration_s: float, shape: str | None, think_time_s: float,
         slo_path: Path, slo_doc: dict[str, Any], out_dir: Path | None, processes: int | None, progress: bool,
         server: dict[str, Any] | None) -> LoadTestResult:
    out = _out_dir(out_dir).resolve()  # settings.reports_dir is relative by default; Locust's cwd is `out`
    prefix = out / "locust"
    paths = {"html": out / "locust.html", "json": out / "locust.json", "log": out / "locust.log",
             "history_csv": out / "locust_stats_history.csv", "stats_csv": out / "locust_stats.csv",
             "failures_csv": out / "locust_failures.csv"}
    run_time = max(1, math.ceil(duration_s))
    cmd = [*locust_command(), "-f", str(LOCUSTFILE), "--headless", "--host", host, "-u", str(users),
           "-t", f"{run_time}s", "--csv", str(prefix), "--csv-full-history", "--html", str(paths["html"]),
           "--json", "--only-summary", "--think-time", f"{think_time_s:g}"]
    # A shape sets its own spawn rates (a spike must arrive at once): -r only without one.
    cmd += ["--shape", shape] if shape else ["-r", f"{spawn_rate:g}"]
    if processes:
        cmd += ["--processes", str(processes)]
    env = {**os.environ, "LOADTEST_SLO": str(slo_path), "PYTHONUNBUFFERED": "1"}
    if not shape:
        env.pop("LOADTEST_SHAPE", None)  # an explicit shape=None wins over the caller's environment
    timeout_s = run_time + 60 + 5 * (processes or 0)
    started = datetime.now().astimezone()
    t0 = time.monotonic()
    with paths["json"].open("wb") as stdout, paths["log"].open("wb") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env, cwd=out,
                                start_new_session=True)
        next_line = PROGRESS_EVERY_S
        try:
            while proc.poll() is None:
                elapsed = time.monotonic() - t0
                if elapsed > timeout_s:
                    raise LoadTestError(f"locust still running after {timeout_s} s; stopped it")
                if progress and elapsed >= next_line:
                    print(_progress_line(paths["history_csv"], elapsed), flush=True)
                    next_line += PROGRESS_EVERY_S
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                _stop(proc)
    wall_s = time.monotonic() - t0
    log = paths["log"].read_text(encoding="utf-8", errors="replace")
    try:
        entries = parse_json_output(paths["json"].read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        tail = "\n".join(log.splitlines()[-20:])
        raise LoadTestError(f"locust exited with code {proc.returncode} without results ({exc}); "
                            f"log {paths['log']}:\n{tail}") from None
    summary = summarize_stats(entries)
    broken = check_slo(summary, slo_doc)
    printed = _SLO_LINE.findall(log)
    workers = {w: int(n) for w, n in _WORKER_LINE.findall(log)}
    summary.update({
        "started_at": started.isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 2),
        "host": host,
        "server": server,
        "config": {"users": users, "spawn_rate": spawn_rate, "duration_s": duration_s, "shape": shape,
                   "think_time_s": think_time_s, "processes": processes},
        "locust_exit_code": proc.returncode,
        "slo": {"source": str(slo_path), "thresholds": {k: slo_doc.get(k) for k in SLO_KEYS},
                "endpoints": slo_doc.get("endpoints", {}), "met": not broken,
                "lines": printed or (broken or [slo_met_line(summary)])},
        "failures_seen": _failures(log),
        "workers": workers,
        "command": cmd,
    })
    result = LoadTestResult(summary, proc.returncode, out, paths)
    result.paths["summary_json"] = out / "summary.json"
    result.paths["summary_json"].write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    result.paths["plot_png"] = plot_loadtest(paths["history_csv"], out / "loadtest.png", entries=entries,
                                             title=f"{_host_label(host)}: {shape or 'constant'} load, {users} users")
    result.paths["summary_md"] = out / "summary.md"
    result.paths["summary_md"].write_text(_markdown(result), encoding="utf-8")
    return result


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT first (Locust then writes its reports), SIGKILL the group if it lingers."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------------------------------- reporting


def summary_table(result: LoadTestResult | Mapping[str, Any]) -> str:
    """Markdown table: one row per endpoint and a total row."""
    s = result.summary if isinstance(result, LoadTestResult) else result
    head = ("| Endpoint | Requests | Failures | RPS | p50 ms | p95 ms | p99 ms | max ms |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [head]
    for name, f in [*s["endpoints"].items(), ("**Total**", s["total"])]:
        rows.append(f"| {name} | {f['requests']} | {f['failures']} | {f['rps']:.1f} | {f['p50_ms']:g} | "
                    f"{f['p95_ms']:g} | {f['p99_ms']:g} | {f['max_ms']:.0f} |")
    return "\n".join(rows)


def _markdown(result: LoadTestResult) -> str:
    s = result.summary
    c = s["config"]
    load = f"shape {c['shape']} (peak {c['users']} users)" if c["shape"] else \
        f"{c['users']} users, spawn rate {c['spawn_rate']:g}/s"
    lines = [f"# Load test {s['started_at']}", "",
             f"- Target: {s['host']}", f"- Load: {load}, {c['duration_s']:g} s, think time {c['think_time_s']:g} s"
             + (f", {c['processes']} worker processes" if c["processes"] else ""),
             f"- Test window: {s['window_s']:g} s; Locust exit code {s['locust_exit_code']}", "",
             summary_table(result), "", f"## SLO ({s['slo']['source']})", ""]
    lines += [f"- {line}" for line in s["slo"]["lines"]]
    if s["failures_seen"]:
        lines += ["", "## Failures", "", "| Endpoint | Error | Count |", "|---|---|---:|"]
        lines += [f"| {f['name']} | {f['error']} | {f['occurrences']} |" for f in s["failures_seen"]]
    if s["workers"]:
        lines += ["", "## Requests per worker process", ""]
        lines += [f"- {w}: {n}" for w, n in sorted(s["workers"].items())]
    lines += ["", "![throughput, latency and users over time](loadtest.png)", ""]
    return "\n".join(lines)


def per_second(entries: Iterable[Mapping[str, Any]]) -> dict[int, tuple[int, int]]:
    """{unix second: (requests, failures)} over every endpoint, from Locust's complete per-second counters."""
    out: dict[int, list[int]] = {}
    for e in entries:
        for col, key in ((0, "num_reqs_per_sec"), (1, "num_fail_per_sec")):
            for sec, n in (e.get(key) or {}).items():
                out.setdefault(int(float(sec)), [0, 0])[col] += int(n)
    return {sec: (v[0], v[1]) for sec, v in sorted(out.items())}


def _host_label(host: str) -> str:
    """A plot title names the target without a loopback port, so committed figures read the same everywhere."""
    return "the local service" if re.search(r"//(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$", host) else host


def plot_loadtest(history_csv: Path, path: Path, *, entries: Iterable[Mapping[str, Any]] | None = None,
                  title: str = "") -> Path:
    """Throughput, latency percentiles and users over time, as one PNG with three panels.

    Throughput comes from the per-second counters in Locust's ``--json`` entries when given
    (complete and exact; the history CSV's own "Requests/s" is a smoothed window and misses
    the last second). Percentiles come from the history CSV and are Locust's "current" ones,
    over a sliding 10 s window. Uses matplotlib's object API (no pyplot): no GUI backend needed
    or changed, so it is safe in a notebook.
    """
    from matplotlib.figure import Figure

    rows = [r for r in _read_history(Path(history_csv)) if r.get("Name") == "Aggregated"]
    counts = per_second(entries or [])
    starts = [_num(r["Timestamp"]) for r in rows[:1]] + ([float(min(counts))] if counts else [])
    t0 = min(starts) if starts else 0.0
    fig = Figure(figsize=(9, 8), layout="constrained")
    ax_rps, ax_lat, ax_users = fig.subplots(3, 1, sharex=True)
    if counts:
        secs = [sec - t0 for sec in counts]
        ax_rps.plot(secs, [c[0] for c in counts.values()], marker=".", label="requests/s")
        ax_rps.plot(secs, [c[1] for c in counts.values()], marker=".", color="tab:red", label="failures/s")
    else:
        ax_rps.plot([_num(r["Timestamp"]) - t0 for r in rows], [_num(r["Requests/s"]) for r in rows],
                    label="requests/s (10 s window)")
        ax_rps.plot([_num(r["Timestamp"]) - t0 for r in rows], [_num(r["Failures/s"]) for r in rows],
                    color="tab:red", label="failures/s (10 s window)")
    ax_rps.set_ylabel("per second")
    ax_rps.set_title(title or "load test")
    for col, label in (("50%", "p50"), ("95%", "p95"), ("99%", "p99")):
        # 0 (or N/A) means "no data in the window yet" in Locust's history, never a 0 ms answer
        ax_lat.plot([_num(r["Timestamp"]) - t0 for r in rows], [_num(r[col]) or math.nan for r in rows],
                    label=label)
    ax_lat.set_ylabel("latency, ms (10 s window)")
    ax_lat.set_ylim(bottom=0)
    ax_users.step([_num(r["Timestamp"]) - t0 for r in rows], [_num(r["User Count"]) for r in rows], where="post",
                  color="tab:green", label="users")
    ax_users.set_ylabel("users")
    ax_users.set_xlabel("seconds since the start")
    for ax in (ax_rps, ax_lat, ax_users):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize="small")
    if not rows and not counts:
        ax_rps.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax_rps.transAxes)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
