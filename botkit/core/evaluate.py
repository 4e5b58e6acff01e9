"""How good is a bot: the figures a release gate, a model card and a person look at.

The metric definitions follow the CLINC150 paper so numbers compare with published ones:
``in_scope_accuracy`` counts an in-scope utterance as right only when the exact intent is
predicted (a fallback is wrong); ``oos_recall`` is the share of out-of-scope utterances that
fell back; ``oos_precision`` the share of fallbacks that were really out of scope.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from botkit.core.data import OOS, Example
from botkit.core.model import IntentModel

__all__ = [
    "Evaluation", "evaluate", "gate_failures", "latency", "metrics_from_labels", "weakest_intents", "write_report",
]


def metrics_from_labels(y_true: Sequence[str], y_pred: Sequence[str]) -> dict:
    """All label-based metrics from two label lists (``oos`` = out of scope); pure and testable."""
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    in_scope, oos = yt != OOS, yt == OOS
    labels = sorted(set(yt.tolist()) | set(yp.tolist()))
    # Per label, one-vs-rest; a ratio with nothing to divide by (never predicted, never true) is 0.
    precision, recall, f1, support = precision_recall_fscore_support(
        yt.tolist(), yp.tolist(), labels=labels, average=None, zero_division=0) if labels else ([], [], [], [])
    per_intent = {label: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                          "support": int(n)}
                  for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)}
    f1s = [float(f) for f, n in zip(f1, support, strict=True) if n]
    confused = Counter((t, p) for t, p in zip(yt.tolist(), yp.tolist(), strict=True) if t != p)
    predicted_oos = yp == OOS
    return {
        "in_scope_accuracy": round(float(np.mean(yt[in_scope] == yp[in_scope])), 4) if in_scope.any() else None,
        "oos_recall": round(float(np.mean(predicted_oos[oos])), 4) if oos.any() else None,
        "oos_precision": (round(float(np.mean(oos[predicted_oos])), 4) if predicted_oos.any() else None),
        # Macro F1 over every label that occurs in the truth, out-of-scope included as one class.
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "n_in_scope": int(in_scope.sum()),
        "n_oos": int(oos.sum()),
        "per_intent": per_intent,
        "confused_pairs": [{"true": t, "predicted": p, "count": n} for (t, p), n in confused.most_common(10)],
    }


def latency(model: IntentModel, texts: Sequence[str], *, repeats: int = 200) -> dict:
    """Predict latency in ms: one text at a time (p50/p95) and per text in batches of 32."""
    texts = list(texts) or ["hello"]
    model.predict(texts[:1])  # warm caches
    single = []
    for i in range(repeats):
        t0 = time.perf_counter()
        model.predict([texts[i % len(texts)]])
        single.append((time.perf_counter() - t0) * 1000)
    batch = (texts * (32 // len(texts) + 1))[:32]
    t0 = time.perf_counter()
    rounds = max(3, repeats // 32)
    for _ in range(rounds):
        model.predict(batch)
    per_text = (time.perf_counter() - t0) * 1000 / (rounds * 32)
    return {
        "single_p50_ms": round(float(np.percentile(single, 50)), 3),
        "single_p95_ms": round(float(np.percentile(single, 95)), 3),
        "batch32_per_text_ms": round(per_text, 4),
        "batch32_texts_per_s": round(1000 / per_text),
    }


@dataclass
class Evaluation:
    """Metrics plus the raw predictions the figures are drawn from."""

    metrics: dict
    y_true: list[str]
    y_pred: list[str]
    confidence: list[float]


def evaluate(model: IntentModel, examples: Sequence[Example], *, measure_latency: bool = True) -> Evaluation:
    texts = [t for t, _ in examples]
    preds = model.predict(texts)
    y_true = [y for _, y in examples]
    y_pred = [p.intent for p in preds]
    metrics = metrics_from_labels(y_true, y_pred)
    metrics["threshold"] = round(model.threshold, 4)
    if measure_latency:
        metrics["latency"] = latency(model, texts)
    return Evaluation(metrics, y_true, y_pred, [p.confidence for p in preds])


def gate_failures(metrics: dict, *, min_in_scope_accuracy: float | None = None,
                  min_oos_recall: float | None = None) -> list[str]:
    """The CI gate: one readable line per broken threshold, empty when the model may ship."""
    out = []
    for key, floor in (("in_scope_accuracy", min_in_scope_accuracy), ("oos_recall", min_oos_recall)):
        if floor is None:
            continue
        value = metrics.get(key)
        if value is None or value < floor:
            out.append(f"{key} {value if value is not None else 'n/a'} is below the gate {floor}")
    return out


def weakest_intents(metrics: dict, n: int = 5) -> list[tuple[str, float]]:
    items = [(k, v["f1"]) for k, v in metrics["per_intent"].items() if k != OOS and v["support"]]
    return sorted(items, key=lambda kv: kv[1])[:n]


def write_report(ev: Evaluation, out_dir: Path | str) -> dict[str, Path]:
    """metrics.json, two PNG figures and a short Markdown summary in ``out_dir``."""
    # Figures drawn without pyplot: no global backend switch, so a notebook's inline plots survive.
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "metrics.json", "confusion": out / "confusion_hotspots.png",
             "confidence": out / "confidence_histogram.png", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(ev.metrics, indent=2) + "\n")

    pairs = ev.metrics["confused_pairs"]
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    if pairs:
        names = [f"{p['true']} → {p['predicted']}" for p in pairs][::-1]
        ax.barh(names, [p["count"] for p in pairs][::-1], color="#c0504d")
        ax.set_xlabel("test utterances")
    else:
        ax.text(0.5, 0.5, "no confusions", ha="center", va="center")
    ax.set_title("Most confused pairs (true → predicted)")
    fig.tight_layout()
    fig.savefig(paths["confusion"], dpi=110)

    conf = np.asarray(ev.confidence)
    is_oos = np.asarray(ev.y_true) == OOS
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 26)
    ax.hist(conf[~is_oos], bins=bins, alpha=0.7, label="in scope", color="#4f81bd")
    ax.hist(conf[is_oos], bins=bins, alpha=0.7, label="out of scope", color="#f79646")
    ax.axvline(ev.metrics["threshold"], color="k", ls="--", label=f"threshold {ev.metrics['threshold']:.2f}")
    ax.set_xlabel("confidence of the top intent")
    ax.set_ylabel("test utterances")
    ax.set_title("Confidence: in scope vs out of scope")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths["confidence"], dpi=110)

    m = ev.metrics
    lines = ["# Evaluation", "", "| metric | value |", "|---|---|"]
    for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "threshold"):
        lines.append(f"| {key} | {m.get(key)} |")
    for key, value in m.get("latency", {}).items():
        lines.append(f"| {key} | {value} |")
    lines += ["", "Weakest intents (F1): " + ", ".join(f"{k} {v:.2f}" for k, v in weakest_intents(m)), "",
              "![confusions](confusion_hotspots.png)", "", "![confidence](confidence_histogram.png)", ""]
    paths["markdown"].write_text("\n".join(lines))
    return paths
