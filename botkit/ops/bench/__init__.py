"""The serving benchmark (`make bench`): botkit's default against what users would pick instead.

Every peer (``peers.PEERS``: naive FastAPI with 1 and 2 workers, LitServe with its batching,
BentoML's ``batchable=True``, botkit with 1 worker, botkit's default, and a no-model ceiling) serves
the same model under the same Locust load (64 closed-loop users, 30 s, 2 interleaved rounds by
default). Ratios are measured side by side in one run, never against numbers from another day.
Writes ``reports/bench/`` (summary.json, per-round CSV, plot) and renders ``loadtests/RESULTS.md``.

Call ``run(...)`` with keyword arguments; ``botkit bench run`` (``botkit/cli/bench.py``) and
``make bench`` do.
"""

from __future__ import annotations

import csv
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from botkit.core.config import settings
from botkit.ops.bench.peers import DEFAULT, PEERS, Peer, select
from botkit.ops.bench.report import (
    REPO,
    environment,
    plot,
    render_results,
    rows_from_summary,
    summary,
    table,
    targets,
    write_json,
)
from botkit.ops.bench.runner import Row, machine_load, median_row, run_peer, run_rounds

__all__ = ["PEERS", "RESULTS_MD", "Peer", "in_process_limit", "render", "run"]

RESULTS_MD = REPO / "loadtests" / "RESULTS.md"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def in_process_limit(tag: str) -> dict:
    """What the model alone can do in this process: the ceiling no server can beat."""
    from botkit.core.data import load
    from botkit.core.evaluate import latency
    from botkit.core.registry import load_model

    model = load_model(tag).model
    texts = [t for t, _ in load().test]
    lat = latency(model, texts, repeats=400)
    return {"single_texts_per_s": round(1000 / lat["single_p50_ms"]), **lat}


def _model_tag() -> str:
    from botkit.core.registry import resolve_tag, set_stage
    from botkit.ops.pipeline import train_evaluate_register

    try:
        return resolve_tag(None, settings.model_name)
    except Exception:
        _say("no model in the store: training the default bot first ...")
        tag = train_evaluate_register().tag
        set_stage(tag, "production")
        return tag


def _write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[k for k in asdict(rows[0]) if k != "extra"])
        w.writeheader()
        for r in rows:
            w.writerow({k: v for k, v in asdict(r).items() if k != "extra"})


def run(*, peers: str | list[str] | None = None, users: int = 64, seconds: float = 30, warmup_s: float = 5,
        rounds: int = 2, curve_users: tuple[int, ...] = (1, 4, 16, 64), curve_s: float = 10,
        out_dir: Path | None = None, results_md: Path | None = RESULTS_MD) -> dict:
    """Run the benchmark; returns the summary (also written to ``out_dir/summary.json``).

    ``results_md=None`` skips rendering RESULTS.md (smoke tests, partial runs).
    """
    chosen = select(peers)
    tag = _model_tag()
    load_before = machine_load()
    _say(f"benchmarking {tag}: {len(chosen)} peers, {users} users, {seconds:g} s per run, {rounds} round(s); "
         f"load average {load_before['loadavg']}")
    limit = in_process_limit(tag)
    results = run_rounds(chosen, tag, rounds=rounds, users=users, seconds=seconds, warmup_s=warmup_s, say=_say)
    rows = [median_row(results[p.key]) for p in chosen]
    curve: list[Row] = []
    default = next((p for p in chosen if p.key == DEFAULT), None)
    if default is not None and curve_users:
        _say("latency vs users for the default ...")
        _, curve = run_peer(default, tag, users=curve_users[0], seconds=curve_s, warmup_s=warmup_s,
                            curve_users=curve_users, curve_s=curve_s, say=_say)
        for r in curve:
            _say(f"    {r.users} users: {r.rps:.0f} rps, p50 {r.p50_ms:g} ms, p99 {r.p99_ms:g} ms")
    params = {"users": users, "seconds": seconds, "warmup_s": warmup_s, "rounds": rounds, "curve_s": curve_s}
    s = summary(tag=tag, rows=rows, rounds=results, curve=curve, limit=limit, params=params, env=environment(),
                load={"before": load_before, "after": machine_load()})
    for p in chosen:
        s["peers"][p.key]["note"] = p.note
    out = Path(out_dir) if out_dir else settings.reports_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    md = table(rows, limit)
    (out / "table.md").write_text(md + "\n")
    _write_csv(out / "results.csv", [r for p in chosen for r in results[p.key]])
    if curve:
        _write_csv(out / "curve.csv", curve)
    plot(rows, curve, out / "bench.png")
    write_json(out / "summary.json", s)
    if results_md is not None:
        shutil.copyfile(out / "bench.png", results_md.with_name("bench.png"))
        results_md.write_text(render_results(s, md, "bench.png"))
    print(md)
    for t in s["targets"]:
        print(f"{'met    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['measured']}")
    print(f"wrote {out}/summary.json, table.md, results.csv, bench.png" + (f" and {results_md}" if results_md else ""))
    return s


def render(*, out_dir: Path | None = None, results_md: Path = RESULTS_MD) -> Path:
    """Render RESULTS.md again from a finished run's ``summary.json`` (e.g. after editing ``bench_why.md``)."""
    import json

    out = Path(out_dir) if out_dir else settings.reports_dir / "bench"
    s = json.loads((out / "summary.json").read_text())
    single = s.get("default_vs_naive", {}).get("single_user_p50_ms")
    s["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(rows_from_summary(s), single)]
    write_json(out / "summary.json", s)
    shutil.copyfile(out / "bench.png", results_md.with_name("bench.png"))
    results_md.write_text(render_results(s, (out / "table.md").read_text().strip(), "bench.png"))
    return results_md
