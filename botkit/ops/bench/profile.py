"""``make profile``: where botkit's serving time and its latency tail go, measured under the bench load.

For each variant (``tuned``: the default as shipped; ``untuned``: the GC and timer settings off,
i.e. botkit before the tail work) it starts the default server, puts the benchmark load on it
(64 users), and meanwhile samples every process of the server with py-spy. It reports latency,
server CPU per request, the batch size, every garbage-collection pause by generation (from the
workers' ``botkit_gc_pause_seconds``), and the functions that hold the CPU (py-spy, self time).
Results: ``reports/bench/profile/`` (summary.md, summary.json, one py-spy raw profile per variant,
loadable in speedscope or flamegraph.pl).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from botkit.core.config import settings
from botkit.ops.bench.peers import Peer
from botkit.ops.bench.runner import _cpu_seconds, _tree, batch_sizes, locust, stop_tree, warm
from botkit.serving.serve import Server

__all__ = ["UNTUNED_ENV", "VARIANTS", "gc_pauses", "profile", "top_functions"]

UNTUNED_ENV = {"BOTKIT_GC_FREEZE": "false", "BOTKIT_GC_GEN0_THRESHOLD": "0", "BOTKIT_CANCEL_REQUEST_TIMERS": "false"}
VARIANTS = {"tuned": {}, "untuned": UNTUNED_ENV}


def gc_pauses(url: str) -> dict[str, dict]:
    """Per generation: collections, total ms, and how many paused the worker 20 ms / 50 ms or more."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != "botkit_gc_pause_seconds":
            continue
        for s in fam.samples:
            g = out.setdefault(s.labels["generation"], {"count": 0, "total_ms": 0.0, "le": {}})
            if s.name.endswith("_count"):
                g["count"] += int(s.value)
            elif s.name.endswith("_sum"):
                g["total_ms"] += s.value * 1000
            elif s.name.endswith("_bucket"):
                g["le"][s.labels["le"]] = g["le"].get(s.labels["le"], 0) + int(s.value)
    for g in out.values():
        le = g.pop("le")
        g["total_ms"] = round(g["total_ms"], 1)
        g["over_20ms"] = g["count"] - le.get("0.02", 0)
        g["over_50ms"] = g["count"] - le.get("0.05", 0)
    return out


def _diff(after: dict[str, dict], before: dict[str, dict]) -> dict[str, dict]:
    return {g: {k: round(v - before.get(g, {}).get(k, 0), 1) for k, v in a.items()} for g, a in sorted(after.items())}


def top_functions(raw: Path, n: int = 15) -> list[tuple[str, float]]:
    """Self-time share of the hottest functions in a py-spy ``raw`` (collapsed stacks) profile."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, num = line.rpartition(" ")
        if not num.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        leaf = re.sub(r":\d+\)$", ")", leaf)  # one row per function, not per line
        leaf = re.sub(r"\(/[^)]*/site-packages/", "(", leaf)
        counts[leaf] += int(num)
        total += int(num)
    return [(f, round(100 * c / total, 1)) for f, c in counts.most_common(n)] if total else []


def _py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        return None
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--duration",
                             str(max(1, int(seconds))), "--rate", "200", "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _variant(name: str, env: dict, tag: str, users: int, seconds: float, out: Path) -> dict:
    peer = Peer(name, f"botkit default ({name})", settings.workers,
                lambda p, t: Server(model=t, workers=settings.workers, env=env))
    server = peer.server(tag)
    server.start()
    try:
        warm(server, peer, 3)
        gc0, b0 = gc_pauses(server.url), batch_sizes(server.url)
        procs = _tree(server.proc.pid)
        cpu0, t0 = _cpu_seconds(procs), time.monotonic()
        result: dict = {}
        load = threading.Thread(target=lambda: result.update(locust(server.url, users, seconds)["total"]))
        load.start()
        time.sleep(1)  # let the load ramp up before sampling
        raw = out / f"py-spy-{name}.txt"
        spy = _py_spy(server.proc.pid, seconds - 2, raw)
        load.join()
        cpu = _cpu_seconds(procs) - cpu0
        wall = time.monotonic() - t0
        if spy is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(30)
        gc1, b1 = gc_pauses(server.url), batch_sizes(server.url)
    finally:
        stop_tree(server)
    calls = b1.get("predict_calls", 0) - b0.get("predict_calls", 0)
    return {"variant": name, "env": env, "rps": result["rps"], "p50_ms": result["p50_ms"], "p95_ms": result["p95_ms"],
            "p99_ms": result["p99_ms"], "failures": result["failures"], "server_cores": round(cpu / wall, 2),
            "cpu_ms_per_request": round(cpu * 1000 / max(result["requests"], 1), 3),
            "mean_batch": round(result["requests"] / calls, 1) if calls else None,
            "gc": _diff(gc1, gc0), "top": top_functions(raw) if raw.exists() else [],
            "profile": str(raw) if raw.exists() else None}


def _markdown(results: list[dict], users: int, seconds: float) -> str:
    lines = [f"# Profile of botkit's default under {users} users ({seconds:g} s per variant)", "",
             "| variant | RPS | p50 ms | p95 ms | p99 ms | failures | server cores | CPU ms/request | mean batch | "
             "GC gen0: n / ms | gen1: n / ms | gen2: n / ms | pauses >= 20 ms | >= 50 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        gc = r["gc"]
        cell = [f"{int(gc.get(g, {}).get('count', 0))} / {gc.get(g, {}).get('total_ms', 0):g}" for g in "012"]
        over20 = sum(int(v.get("over_20ms", 0)) for v in gc.values())
        over50 = sum(int(v.get("over_50ms", 0)) for v in gc.values())
        lines.append(f"| {r['variant']} | {r['rps']:.0f} | {r['p50_ms']:g} | {r['p95_ms']:g} | {r['p99_ms']:g} | "
                     f"{r['failures']} | {r['server_cores']} | {r['cpu_ms_per_request']} | {r['mean_batch']} | "
                     + " | ".join(cell) + f" | {over20} | {over50} |")
    for r in results:
        lines += ["", f"## Where the CPU goes ({r['variant']}, py-spy self time, all server processes)", "",
                  "| function | share % |", "|---|---:|"]
        lines += [f"| `{f}` | {p} |" for f, p in r["top"]] or ["| (py-spy not available) | |"]
    return "\n".join(lines) + "\n"


def profile(*, users: int = 64, seconds: float = 15, variants: tuple[str, ...] = ("tuned", "untuned"),
            out_dir: Path | None = None) -> list[dict]:
    """Run each variant once; write and print the summary."""
    import json

    from botkit.ops.bench import _model_tag

    tag = _model_tag()
    out = Path(out_dir) if out_dir else settings.reports_dir / "bench" / "profile"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in variants:
        print(f"profiling {name} ({users} users, {seconds:g} s) ...", file=sys.stderr, flush=True)
        results.append(_variant(name, VARIANTS[name], tag, users, seconds, out))
    md = _markdown(results, users, seconds)
    (out / "summary.md").write_text(md)
    (out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    print(md)
    print(f"wrote {out}/summary.md, summary.json and the py-spy profiles")
    return results
