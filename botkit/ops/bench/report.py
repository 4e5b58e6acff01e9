"""Rendering the benchmark: the table, the targets, the plots, ``summary.json`` and ``loadtests/RESULTS.md``.

Everything in RESULTS.md is generated from the run's figures except the "why" section, which is
read verbatim from ``loadtests/bench_why.md`` (hand-written; it must cite commands that reproduce
what it claims, e.g. ``make profile``).
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import psutil

from botkit.core.config import PACKAGE_DIR
from botkit.ops.bench.peers import ALTERNATIVES, DEFAULT, LITSERVE, NAIVE_SAME_CORES
from botkit.ops.bench.runner import Row

__all__ = ["WHY_FILE", "environment", "plot", "render_results", "rows_from_summary", "summary", "table", "targets"]

REPO = PACKAGE_DIR.parent
WHY_FILE = REPO / "loadtests" / "bench_why.md"
PACKAGES = ("bentoml", "litserve", "locust", "fastapi", "uvicorn", "httptools", "uvloop", "scikit-learn",
            "prometheus-client", "py-spy")


def environment() -> dict:
    """Machine, versions and commit: what a reader needs to judge the figures."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), cpu)
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "botkit", "loadtests"))
    return {"cpu": cpu, "cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "os": platform.platform(terse=True), "python": platform.python_version(), "versions": versions,
            "commit": git("rev-parse", "--short=12", "HEAD"), "dirty": dirty}


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def table(rows: list[Row], limit: dict | None = None) -> str:
    """The comparison table; ratios against the same-cores naive service and against LitServe."""
    by = {r.key: r for r in rows}
    naive = by.get(NAIVE_SAME_CORES).rps if NAIVE_SAME_CORES in by else None
    lit = by.get(LITSERVE).rps if LITSERVE in by else None
    lines = ["| configuration | workers | RPS | x naive 2w | x LitServe | p50 ms | p95 ms | p99 ms | failures | "
             "server CPU cores | Locust CPU cores | RSS MB | mean batch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if limit:
        for label, rps, p50 in (("in-process model, 1 text at a time", limit["single_texts_per_s"],
                                 limit["single_p50_ms"]),
                                ("in-process model, batches of 32", limit["batch32_texts_per_s"], "")):
            lines.append(f"| {label} | 1 | {rps:.0f} | {_ratio(rps, naive)} | {_ratio(rps, lit)} | {p50} "
                         "| | | | 1 | | | |")
    for r in rows:
        name = f"**{r.label}**" if r.key == DEFAULT else r.label
        lines.append(f"| {name} | {r.workers} | {r.rps:.0f} | {_ratio(r.rps, naive)} | {_ratio(r.rps, lit)} | "
                     f"{r.p50_ms:g} | {r.p95_ms:g} | {r.p99_ms:g} | {r.failures} | {r.cpu_cores} | "
                     f"{r.extra.get('locust_cores', '')} | {r.rss_mb:.0f} | "
                     f"{r.extra.get('mean_batch', '')} |")
    return "\n".join(lines)


def targets(rows: list[Row], single_user_p50: float | None) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the shipped default, from this run only."""
    by = {r.key: r for r in rows}
    d = by.get(DEFAULT)
    if d is None:
        return []
    out = []
    for key, need, what in ((NAIVE_SAME_CORES, 3.0, "naive FastAPI 2 workers"), (LITSERVE, 2.5, "LitServe")):
        if key in by and by[key].rps:
            ratio = d.rps / by[key].rps
            out.append((f"throughput >= {need:g}x {what}", f"{ratio:.2f}x ({d.rps:.0f} vs {by[key].rps:.0f} RPS)",
                        ratio >= need))
    out.append(("p99 <= 100 ms at 64 users", f"{d.p99_ms:g} ms", d.p99_ms <= 100))
    others = [r for r in rows if r.key in ALTERNATIVES]
    if others:
        best = min(others, key=lambda r: r.p99_ms)
        out.append(("p99 no higher than any alternative's p99 (naive FastAPI, LitServe, BentoML batching)",
                    f"{d.p99_ms:g} ms vs best {best.p99_ms:g} ms ({best.label})", d.p99_ms <= best.p99_ms))
    out.append(("0 failures", f"{d.failures} in {d.requests} requests", d.failures == 0))
    if single_user_p50 is not None:
        out.append(("single-user p50 < 5 ms", f"{single_user_p50:g} ms", single_user_p50 < 5))
    return out


def rows_from_summary(s: dict) -> list[Row]:
    """The median rows back from ``summary.json`` (to recompute targets when rendering again)."""
    keys = ("label", "rps", "p50_ms", "p95_ms", "p99_ms", "failures", "requests", "server_cores", "workers")
    out = []
    for key, p in s["peers"].items():
        label, rps, p50, p95, p99, failures, requests, cores, workers = (p.get(k, 0) for k in keys)
        extra = {k: v for k, v in p.items() if k not in keys}
        out.append(Row(key, label, s["users"], rps, p50, p95, p99, failures, requests, cores, 0.0, workers, extra))
    return out


def summary(*, tag: str, rows: list[Row], rounds: dict[str, list[Row]], curve: list[Row], limit: dict,
            params: dict, env: dict, load: dict) -> dict:
    """``reports/bench/summary.json``: ``default_vs_naive`` (kept for old readers) and the ``peers`` map."""
    by = {r.key: r for r in rows}
    d, naive = by.get(DEFAULT), by.get(NAIVE_SAME_CORES)
    single = curve[0].p50_ms if curve and curve[0].users == 1 else None
    out = {"model": tag, **params, "machine": env, "load": load, "in_process": limit,
           "peers": {r.key: {"label": r.label, "rps": r.rps, "p50_ms": r.p50_ms, "p95_ms": r.p95_ms,
                             "p99_ms": r.p99_ms, "failures": r.failures, "server_cores": r.cpu_cores,
                             "workers": r.workers, "requests": r.requests, **r.extra} for r in rows},
           "per_round": {k: [asdict(r) for r in v] for k, v in rounds.items()},
           "curve": [asdict(r) for r in curve],
           "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(rows, single)]}
    if d is not None and naive is not None:
        out["default_vs_naive"] = {"throughput_ratio": round(d.rps / naive.rps, 2) if naive.rps else None,
                                   "p99_ms": [d.p99_ms, naive.p99_ms], "failures": d.failures,
                                   "single_user_p50_ms": single}
    if d is not None and LITSERVE in by and by[LITSERVE].rps:
        out["default_vs_litserve"] = {"throughput_ratio": round(d.rps / by[LITSERVE].rps, 2),
                                      "p99_ms": [d.p99_ms, by[LITSERVE].p99_ms]}
    return out


def plot(rows: list[Row], curve: list[Row], path: Path) -> None:
    """Throughput and p99 per peer, and the default's latency against users."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.6))
    axes = fig.subplots(1, 3)
    names = [r.label.replace(", ", ",\n") for r in rows]
    colours = ["#c0504d" if r.key == DEFAULT else "#999999" if r.key == "ceiling" else "#4f81bd" for r in rows]
    axes[0].barh(names, [r.rps for r in rows], color=colours)
    axes[0].set_title("throughput (requests/s), 64 users")
    axes[1].barh(names, [r.p99_ms for r in rows], color=colours)
    axes[1].set_title("p99 latency (ms)")
    for ax in axes[:2]:
        ax.tick_params(axis="y", labelsize=7)
        ax.invert_yaxis()
    axes[1].set_yticklabels([])
    if curve:
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
    fig.savefig(path, dpi=100)


def _md_versions(env: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in env["versions"].items())


def _header(s: dict) -> list[str]:
    env, load = s["machine"], s["load"]
    busy = max(load["before"]["loadavg"][0], load["after"]["loadavg"][0]) > 0.5 * env["cpus"]
    dirty = " (with uncommitted changes)" if env["dirty"] else ""
    return [
        "# Serving benchmark results", "",
        f"Generated by `make bench` (`botkit bench run`) on {load['before']['at']} at commit "
        f"`{env['commit']}`{dirty}. Do not edit by hand: everything but the last section is rendered from the "
        "run; that section is `loadtests/bench_why.md`.", "",
        f"Load: `loadtests/bench_locustfile.py`, {s['users']} closed-loop users (no think time), "
        f"{s['seconds']:g} s per run after a {s['warmup_s']:g} s warm-up, {s['rounds']} interleaved round(s) "
        "(medians below; odd rounds in reverse order), Locust on the same machine. Model "
        f"`{s['model']}`, the same for every row. Ratios come from this run only.", "",
        f"Machine: {env['cpus']} x {env['cpu']}, {env['memory_gib']} GiB, {env['os']}, Python {env['python']}. "
        f"Load average (1/5/15 min) before: {load['before']['loadavg']}, after: {load['after']['loadavg']} "
        f"({'busy: other work shared the cores, so read ratios, not absolute figures' if busy else 'quiet'}).", "",
        f"Versions: {_md_versions(env)}.", ""]


def render_results(s: dict, table_md: str, plot_name: str) -> str:
    """The whole of ``loadtests/RESULTS.md``."""
    lines = [*_header(s), "## Results", "", table_md, "", "## Targets for the shipped default", "",
             "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in s["targets"]]
    lines += ["", "## Each round", "", "| configuration | " + " | ".join(
        f"round {i + 1} RPS / p99 ms" for i in range(s["rounds"])) + " |", "|---|" + "---:|" * s["rounds"]]
    for key, rows in s["per_round"].items():
        cells = [f"{r['rps']:.0f} / {r['p99_ms']:g}" for r in sorted(rows, key=lambda r: r["extra"].get("round", 0))]
        lines.append(f"| {s['peers'][key]['label']} | " + " | ".join(cells) + " |")
    if s["curve"]:
        lines += ["", f"## Latency against users (botkit default, {s['curve_s']:g} s per step)", "",
                  "| users | RPS | p50 ms | p95 ms | p99 ms | failures |", "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['users']} | {r['rps']:.0f} | {r['p50_ms']:g} | {r['p95_ms']:g} | {r['p99_ms']:g} | "
                  f"{r['failures']} |" for r in s["curve"]]
    lines += ["", f"![throughput, p99 and latency against users]({plot_name})", ""]
    lines += ["## Peers", "", "| key | configuration | how |", "|---|---|---|"]
    lines += [f"| `{k}` | {p['label']} | {p.get('note', '')} |" for k, p in s["peers"].items()]
    why = WHY_FILE.read_text().strip() if WHY_FILE.exists() else "## Why\n\n(no `loadtests/bench_why.md`)"
    return "\n".join(lines) + "\n\n" + why + "\n"


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
