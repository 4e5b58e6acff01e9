"""The scaling benchmark (`make bench`): botkit's serving stack against the service a user would write.

Every configuration gets the same Locust load (default 64 users, no think time, 30 s after a
warm-up) from ``loadtests/bench_locustfile.py``, in interleaved rounds so a noisy neighbour
hurts all rows alike. Ratios are measured side by side in one run, never against numbers
from another day. Results: a Markdown table on stdout and ``reports/bench/`` (table, CSVs,
plots, ``summary.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from botkit.core.config import PACKAGE_DIR, settings
from botkit.ops.loadtest import locust_command, parse_json_output, summarize_stats
from botkit.serving.serve import Server, post_json

__all__ = ["CONFIGS", "Config", "main", "measure"]

LOCUSTFILE = PACKAGE_DIR.parent / "loadtests" / "bench_locustfile.py"


@dataclass(frozen=True)
class Config:
    name: str
    kind: str  # "naive" or "botkit"
    workers: int = 1
    batching: bool = False


CONFIGS = (
    Config("naive FastAPI (1 worker, def)", "naive"),
    Config("botkit 1 worker, no batching", "botkit", 1, False),
    Config("botkit 1 worker, adaptive batching", "botkit", 1, True),
    Config("botkit default", "botkit", settings.workers, settings.batching),
)


class NaiveServer(Server):
    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "botkit.ops.naive:app", "--factory", "--host", self.host,
                "--port", str(self.port), "--no-access-log", "--log-level", "warning"]


@dataclass
class Row:
    config: str
    users: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failures: int
    requests: int
    cpu_cores: float
    rss_mb: float
    extra: dict = field(default_factory=dict)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def locust(url: str, users: int, seconds: float) -> dict:
    """One headless Locust run of the benchmark load; returns botkit.ops.loadtest's summary dict."""
    cmd = [*locust_command(), "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users), "-t",
           f"{seconds}s", "--host", url, "--json", "--only-summary", "--stop-timeout", "5", "--loglevel", "ERROR"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    return summarize_stats(parse_json_output(out.stdout))


def measure(server: Server, config: str, users: int, seconds: float) -> Row:
    procs = _tree(psutil.Process(server.proc.pid))
    cpu0, t0 = _cpu_seconds(procs), time.monotonic()
    s = locust(server.url, users, seconds)["total"]
    cpu = (_cpu_seconds(procs) - cpu0) / (time.monotonic() - t0)
    return Row(config, users, s["rps"], s["p50_ms"], s["p95_ms"], s["p99_ms"], s["failures"], s["requests"],
               round(cpu, 2), round(_rss_mb(procs), 1))


def _start(cfg: Config, tag: str) -> Server:
    if cfg.kind == "naive":
        return NaiveServer(model=tag, all_workers=False).start()
    return Server(model=tag, workers=cfg.workers, batching=cfg.batching, access_log=False).start()


def _warm(server: Server, seconds: float) -> None:
    post_json(f"{server.url}/chat", {"message": "hello"})
    locust(server.url, 16, seconds)


def in_process_limit(tag: str) -> dict:
    """What the model alone can do in this process: the ceiling no server can beat."""
    from botkit.core.data import load
    from botkit.core.evaluate import latency
    from botkit.core.registry import load_model

    model = load_model(tag).model
    texts = [t for t, _ in load().test]
    lat = latency(model, texts, repeats=400)
    return {"single_texts_per_s": round(1000 / lat["single_p50_ms"]), "batch32_texts_per_s":
            lat["batch32_texts_per_s"], **lat}


def _median_rows(rows: list[Row]) -> Row:
    def med(attr: str) -> float:
        return round(statistics.median(getattr(r, attr) for r in rows), 2)

    first = rows[0]
    return Row(first.config, first.users, med("rps"), med("p50_ms"), med("p95_ms"), med("p99_ms"),
               sum(r.failures for r in rows), sum(r.requests for r in rows), med("cpu_cores"), med("rss_mb"),
               {"rounds": len(rows), "rps_each": [r.rps for r in rows]})


def table(rows: list[Row], baseline_rps: float, limit: dict) -> str:
    lines = ["| configuration | RPS | x naive | p50 ms | p95 ms | p99 ms | failures | server CPU cores | RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| in-process model, 1 text at a time | {limit['single_texts_per_s']} | "
             f"{limit['single_texts_per_s'] / baseline_rps:.2f} | {limit['single_p50_ms']} | | | | 1 | |",
             f"| in-process model, batches of 32 | {limit['batch32_texts_per_s']} | "
             f"{limit['batch32_texts_per_s'] / baseline_rps:.2f} | | | | | 1 | |"]
    for r in rows:
        lines.append(f"| {r.config} | {r.rps:.0f} | {r.rps / baseline_rps:.2f} | {r.p50_ms:g} | {r.p95_ms:g} | "
                     f"{r.p99_ms:g} | {r.failures} | {r.cpu_cores} | {r.rss_mb:.0f} |")
    return "\n".join(lines)


def plot(rows: list[Row], curve: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = [r.config.replace(" (", "\n(").replace(", ", ",\n") for r in rows]
    axes[0].bar(names, [r.rps for r in rows], color=["#999999"] + ["#4f81bd"] * (len(rows) - 1))
    axes[0].set_title("throughput (requests/s)")
    axes[1].bar(names, [r.p99_ms for r in rows], color=["#999999"] + ["#c0504d"] * (len(rows) - 1))
    axes[1].set_title("p99 latency (ms)")
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=7)
    users = [r.users for r in curve]
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s-"), ("p99_ms", "^-")):
        axes[2].plot(users, [getattr(r, key) for r in curve], style, label=key.replace("_ms", ""))
    ax2 = axes[2].twinx()
    ax2.plot(users, [r.rps for r in curve], "k--", label="RPS")
    ax2.set_ylabel("requests/s")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("concurrent users")
    axes[2].set_ylabel("latency (ms)")
    axes[2].set_title("botkit default: latency vs users")
    axes[2].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(*, users: int = 64, seconds: float = 30, warmup_s: float = 5, rounds: int = 2,
        curve_users: tuple[int, ...] = (1, 4, 16, 64), curve_s: float = 10, out_dir: Path | None = None) -> dict:
    from botkit.core.registry import resolve_tag, set_stage
    from botkit.ops.pipeline import train_evaluate_register

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        tag = resolve_tag(None, settings.model_name)
    except Exception:
        say("no model in the store: training the default bot first ...")
        tag = train_evaluate_register().tag
        set_stage(tag, "production")
    say(f"benchmarking {tag}: {users} users, {seconds:g} s per run, {rounds} interleaved round(s)")
    limit = in_process_limit(tag)
    results: dict[str, list[Row]] = {c.name: [] for c in CONFIGS}
    for rnd in range(1, rounds + 1):
        for cfg in CONFIGS:
            say(f"  round {rnd}/{rounds}: {cfg.name} ...")
            with _start(cfg, tag) as server:
                _warm(server, warmup_s)
                row = measure(server, cfg.name, users, seconds)
            say(f"    {row.rps:.0f} rps, p50 {row.p50_ms:g} ms, p99 {row.p99_ms:g} ms, {row.failures} failures, "
                f"{row.cpu_cores} cores")
            results[cfg.name].append(row)
    rows = [_median_rows(results[c.name]) for c in CONFIGS]
    say("latency vs users for the default configuration ...")
    curve = []
    default = CONFIGS[-1]
    with _start(default, tag) as server:
        _warm(server, warmup_s)
        for u in curve_users:
            curve.append(measure(server, default.name, u, curve_s))
            say(f"    {u} users: {curve[-1].rps:.0f} rps, p50 {curve[-1].p50_ms:g} ms")
    baseline = rows[0].rps or 1.0
    md = table(rows, baseline, limit)
    out = out_dir or settings.reports_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(md + "\n")
    for name, data in (("results.csv", [r for c in CONFIGS for r in results[c.name]]), ("curve.csv", curve)):
        with (out / name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=[k for k in asdict(data[0]) if k != "extra"])
            w.writeheader()
            for r in data:
                w.writerow({k: v for k, v in asdict(r).items() if k != "extra"})
    plot(rows, curve, out / "bench.png")
    default_row = rows[-1]
    summary = {
        "model": tag, "users": users, "seconds": seconds, "rounds": rounds,
        "machine": {"cpus": psutil.cpu_count(), "python": sys.version.split()[0]},
        "in_process": limit, "rows": [asdict(r) for r in rows], "curve": [asdict(r) for r in curve],
        "default_vs_naive": {
            "throughput_ratio": round(default_row.rps / baseline, 2),
            "p99_ms": [default_row.p99_ms, rows[0].p99_ms],
            "failures": default_row.failures,
            "single_user_p50_ms": curve[0].p50_ms if curve and curve[0].users == 1 else None,
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(md)
    d = summary["default_vs_naive"]
    print(f"\ndefault vs naive: {d['throughput_ratio']}x throughput, p99 {d['p99_ms'][0]:g} vs "
          f"{d['p99_ms'][1]:g} ms, {d['failures']} failures, single-user p50 {d['single_user_p50_ms']} ms")
    print(f"wrote {out}/table.md, results.csv, curve.csv, bench.png, summary.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m botkit.ops.bench", description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--curve-seconds", type=float, default=10)
    a = p.parse_args(argv)
    run(users=a.users, seconds=a.seconds, warmup_s=a.warmup, rounds=a.rounds, curve_s=a.curve_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
