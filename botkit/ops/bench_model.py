"""Model benchmark: how long training takes and how much batching speeds up prediction.

Run ``botkit bench model`` (or ``python -m botkit.ops.bench_model``). For the bundled shopbot data and for
``botkit.core.data.synthetic()`` (150 intents, the size of CLINC150) it trains the default model,
then measures predict latency one text at a time (p50 over many calls) and in batches of
32 (median batch time / 32), and the test-split in-scope accuracy and out-of-scope recall.
The result is a Markdown table on stdout; progress goes to stderr, so
``python -m botkit.ops.bench_model > bench.md`` keeps only the table.

The single-vs-batch ratio is what adaptive batching in the service can gain at best: the
TF-IDF transform and the linear model are vectorised, so one call on 32 texts costs far less
than 32 calls on one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from botkit.core.data import Dataset, load, synthetic
from botkit.core.evaluate import evaluate
from botkit.core.model import IntentModel, TrainParams

__all__ = ["bench_one", "markdown_table", "run"]

BATCH = 32
COLUMNS = (
    "data", "intents", "train / test texts", "train s", "single p50 ms", f"batch-{BATCH} ms/text",
    "single texts/s", "batch texts/s", "batch/single", "in-scope acc", "oos recall",
)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _measure(model: IntentModel, texts: Sequence[str], repeats: int) -> tuple[float, float]:
    """(single-text p50 ms, per-text ms in batches of ``BATCH``), cycling through ``texts``."""
    texts = list(texts) or ["hello"]
    model.predict(texts[:BATCH])  # warm up caches and lazy imports
    single = []
    for i in range(repeats):
        t0 = time.perf_counter()
        model.predict([texts[i % len(texts)]])
        single.append(time.perf_counter() - t0)
    pool = texts * (2 * BATCH // len(texts) + 2)  # long enough to slice any window of BATCH
    batches = []
    for i in range(max(5, repeats // 4)):
        start = (i * BATCH) % len(texts)
        batch = pool[start : start + BATCH]
        t0 = time.perf_counter()
        model.predict(batch)
        batches.append(time.perf_counter() - t0)
    return float(np.median(single)) * 1000, float(np.median(batches)) * 1000 / BATCH


def bench_one(name: str, ds: Dataset, params: TrainParams, repeats: int) -> dict[str, object]:
    """Train once on ``ds`` and measure; returns one table row keyed by ``COLUMNS``."""
    sizes = ds.sizes()
    n_train = sum(sizes["train"].values())
    n_test = sum(sizes["test"].values())
    _progress(f"[{name}] training on {n_train} texts, {len(ds.intents)} intents ...")
    t0 = time.perf_counter()
    model = IntentModel.train(ds, params)
    train_s = time.perf_counter() - t0
    _progress(f"[{name}] trained in {train_s:.2f} s; evaluating on {n_test} test texts ...")
    m = evaluate(model, ds.test, measure_latency=False).metrics
    _progress(f"[{name}] timing predict ({repeats} single calls, batches of {BATCH}) ...")
    single_ms, batch_ms = _measure(model, [t for t, _ in ds.test], repeats)
    single_tps, batch_tps = 1000 / single_ms, 1000 / batch_ms
    return {
        "data": name,
        "intents": len(ds.intents),
        "train / test texts": f"{n_train} / {n_test}",
        "train s": f"{train_s:.2f}",
        "single p50 ms": f"{single_ms:.3f}",
        f"batch-{BATCH} ms/text": f"{batch_ms:.4f}",
        "single texts/s": f"{single_tps:,.0f}",
        "batch texts/s": f"{batch_tps:,.0f}",
        "batch/single": f"{batch_tps / single_tps:.1f}x",
        "in-scope acc": _fmt(m["in_scope_accuracy"]),
        "oos recall": _fmt(m["oos_recall"]),
    }


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def markdown_table(rows: Sequence[dict[str, object]]) -> str:
    align = "|".join("---" if c == "data" else "---:" for c in COLUMNS)
    lines = ["| " + " | ".join(COLUMNS) + " |", f"|{align}|"]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def run(*, repeats: int = 300, intents: int = 150, classifier: str = "svm", seed: int = 42) -> list[dict[str, object]]:
    """Benchmark the bundled data and a synthetic set of ``intents`` intents; print and return the table rows."""
    if repeats < 1 or intents < 2:
        raise ValueError("repeats must be >= 1 and intents >= 2")
    params = TrainParams(seed=seed, classifier=classifier)
    datasets: list[tuple[str, Callable[[], Dataset]]] = [
        ("shopbot (bundled)", load),
        (f"synthetic{intents} (CLINC150 size)" if intents == 150 else f"synthetic{intents}",
         lambda: synthetic(n_intents=intents, seed=seed)),
    ]
    rows = []
    for name, make in datasets:
        _progress(f"[{name}] loading ...")
        rows.append(bench_one(name, make(), params, repeats))
    print(f"Model benchmark ({classifier}, seed {seed}, {repeats} single calls, batches of {BATCH})\n")
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":  # a thin shim: the one parser is `botkit bench model`
    from botkit.cli import main

    sys.exit(main(["bench", "model", *sys.argv[1:]]))
