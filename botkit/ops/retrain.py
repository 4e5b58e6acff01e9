"""Close the loop: users' corrections become training data, a candidate is trained, the policy decides.

Why it is shaped like this:

* Each run starts from the curated base data set (the bundled one by default), never from
  the previous retrained set, and adds *all* corrective feedback in the event store: the
  same events give the same data set (same fingerprint), and nothing is counted twice.
* A correction whose text equals a validation or test utterance (after
  :func:`botkit.core.data.normalize`) is skipped: learning it would leak into the evaluation the
  promotion decision rests on. Skips are counted by reason and reported.
* Messages the bot was unsure about and nobody corrected go to a review queue (a CSV for a
  person to label), not into training: an unconfirmed guess must not teach the model.
* The candidate is trained with the production model's parameters, so the comparison
  isolates the data change, and is judged by :func:`botkit.ops.governance.promote`, so it needs
  the same evidence, reviewer and audit trail as any other promotion.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from botkit.core.config import settings
from botkit.core.data import OOS, Dataset, load, normalize
from botkit.ops import corrections as corrections_rule
from botkit.ops import governance

if TYPE_CHECKING:
    from botkit.serving.events import ChatEvent, EventStore, FeedbackEvent

__all__ = ["RetrainResult", "retrain"]

_READ_BATCH = 1000
_PLOT_METRICS = ("in_scope_accuracy", "oos_recall", "macro_f1")
_TABLE_METRICS = ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
_TOP_CHANGES = 10


@dataclass(frozen=True)
class RetrainResult:
    """What one retraining run produced; ``candidate_tag`` is None when there was nothing new to learn."""

    candidate_tag: str | None
    production_tag: str | None
    dataset_name: str
    data_fingerprint: str
    n_new_examples: int
    n_review: int
    skipped: dict[str, int]
    decision: governance.Decision | None
    promoted: bool
    paths: dict[str, Path] = field(default_factory=dict)


def _read_events(store: EventStore) -> tuple[dict[str, ChatEvent], dict[str, FeedbackEvent], set[str]]:
    """First chat event per request, first corrective feedback per request, requests with any feedback."""
    chats: dict[str, ChatEvent] = {}
    corrections: dict[str, FeedbackEvent] = {}
    with_feedback: set[str] = set()
    after = None
    while True:
        events = store.read(after=after, limit=_READ_BATCH)
        if not events:
            break
        after = events[-1].id
        for ev in events:
            p = ev.payload
            if ev.kind == "chat":
                chats.setdefault(p.request_id, p)  # type: ignore[arg-type]
            elif ev.kind == "feedback":
                with_feedback.add(p.request_id)
                if getattr(p, "correct_intent", None):
                    corrections.setdefault(p.request_id, p)  # type: ignore[arg-type]  # each request counts once
    return chats, corrections, with_feedback


def _examples(base: Dataset, chats: dict[str, ChatEvent],
              corrections: dict[str, FeedbackEvent]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    held_out = {normalize(t) for s in ("val", "test") for t, _ in base.split(s)}
    train = {normalize(t): y for t, y in base.train}
    known = set(base.intents) | {OOS}
    skipped: Counter[str] = Counter()
    new: dict[str, tuple[str, str]] = {}
    for request_id, fb in corrections.items():
        chat = chats.get(request_id)
        label = (fb.correct_intent or "").strip()
        if chat is None:
            skipped["no_chat_event"] += 1
        elif not chat.text.strip():
            skipped["empty_text"] += 1  # dropped by retention
        elif label not in known:
            skipped["unknown_intent"] += 1
        else:
            key = normalize(chat.text)
            if key in held_out:
                skipped["leak_val_test"] += 1
            elif key in train and train[key] != label:
                skipped["conflicts_with_train"] += 1
            elif key in train or key in new:
                skipped["duplicate"] += 1
            else:
                new[key] = (chat.text, label)
    return list(new.values()), dict(sorted(skipped.items()))


def _cell(text: str) -> str:
    """User text is opened in spreadsheets: a leading = + - @ would run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _visible_row(c: ChatEvent) -> list[str]:
    text, flags = corrections_rule.visible(c.text)  # invisible characters removed and flagged
    return [_cell(c.request_id), _cell(text), c.intent, f"{c.confidence:.4f}", flags]


def _write_review_queue(path: Path, chats: dict[str, ChatEvent], with_feedback: set[str],
                        min_confidence: float) -> int:
    """Uncorrected low-confidence chats, least confident first; cells starting = + - @ get a leading '."""
    rows = sorted((c for rid, c in chats.items()
                   if c.confidence < min_confidence and rid not in with_feedback and c.text.strip()),
                  key=lambda c: (c.confidence, c.ts))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["request_id", "text", "predicted_intent", "confidence", "flags"])
        w.writerows(_visible_row(c) for c in rows)
    return len(rows)


def _run_dir(out_dir: str | os.PathLike[str] | None, stamp: str) -> Path:
    return settings.new_report_dir("retrain", out_dir=out_dir)


def _f1_changes(cand: dict, prod: dict | None) -> list[tuple[str, float, float, float]]:
    if not prod:
        return []
    out = []
    for intent, c in cand.get("per_intent", {}).items():
        p = prod.get("per_intent", {}).get(intent)
        if p and (c["support"] or p["support"]):
            out.append((intent, p["f1"], c["f1"], round(c["f1"] - p["f1"], 4)))
    changed = [r for r in out if r[3] != 0]
    return sorted(changed, key=lambda r: (-abs(r[3]), r[0]))[:_TOP_CHANGES]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _comparison_md(path: Path, *, stamp: str, base: Dataset, ds: Dataset, n_new: int, skipped: dict[str, int],
                   n_review: int, min_confidence: float, decision: governance.Decision, promote: bool) -> None:
    cand, prod = decision.candidate_metrics, decision.production_metrics
    prod_name = decision.production_tag or "none"
    lines = [f"# Retraining run {stamp}", "",
             f"- Base data: {base.name} `{base.fingerprint()}`",
             f"- New data: {ds.name} `{ds.fingerprint()}` (+{n_new} training examples from corrective feedback)",
             "- Skipped corrections: " + (", ".join(f"{k} {v}" for k, v in skipped.items()) or "none")
             + (" (leak_val_test: equal, after normalisation, to a validation or test utterance)"
                if skipped.get("leak_val_test") else ""),
             f"- Review queue: {n_review} chats with confidence < {min_confidence} and no feedback "
             "(`review_queue.csv`)", "",
             f"## Candidate `{decision.candidate_tag}` vs production `{prod_name}`", "",
             f"Both evaluated on the test split of {decision.test_set['name']} ({decision.test_set['n']} utterances).",
             "", "| metric | production | candidate | Δ |", "|---|---|---|---|"]
    rows = [(k, (prod or {}).get(k), cand.get(k)) for k in _TABLE_METRICS]
    rows.append(("single_p95_ms", ((prod or {}).get("latency") or {}).get("single_p95_ms"),
                 (cand.get("latency") or {}).get("single_p95_ms")))
    for key, p, c in rows:
        delta = f"{c - p:+.4f}" if p is not None and c is not None else "n/a"
        lines.append(f"| {key} | {_fmt(p)} | {_fmt(c)} | {delta} |")
    changes = _f1_changes(cand, prod)
    lines += ["", "## Per-intent F1, largest changes", ""]
    if changes:
        lines += ["| intent | production | candidate | Δ |", "|---|---|---|---|"]
        lines += [f"| {i} | {p:.3f} | {c:.3f} | {d:+.3f} |" for i, p, c, d in changes]
    else:
        lines.append("No per-intent F1 changed." if prod else "No production model to compare with.")
    verb = "Promotion decision" if promote else "Policy verdict (promotion not attempted)"
    lines += ["", f"## {verb}", "", "```", decision.explain(), "```", "", "![comparison](comparison.png)", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _comparison_png(path: Path, decision: governance.Decision) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cand, prod = decision.candidate_metrics, decision.production_metrics
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.3]})
    x = np.arange(len(_PLOT_METRICS))
    series = [(f"candidate {decision.candidate_tag}", cand, "#4f81bd")]
    if prod:
        series.insert(0, (f"production {decision.production_tag}", prod, "#9bbb59"))
    width = 0.8 / len(series)
    for i, (label, m, color) in enumerate(series):
        values = [m.get(k) or 0.0 for k in _PLOT_METRICS]
        bars = left.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label, color=color)
        left.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    left.set_xticks(x, [k.replace("_", " ") for k in _PLOT_METRICS])
    left.set_ylim(0, 1.3)
    left.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    left.set_title(f"Test split of {decision.test_set['name']}")
    left.legend(loc="upper center", fontsize=8)
    changes = _f1_changes(cand, prod)
    if changes:
        names = [c[0] for c in changes][::-1]
        deltas = [c[3] for c in changes][::-1]
        right.barh(names, deltas, color=["#9bbb59" if d > 0 else "#c0504d" for d in deltas])
        right.axvline(0, color="k", lw=0.8)
        right.set_xlabel("F1 candidate − production")
    else:
        right.text(0.5, 0.5, "no per-intent change" if prod else "no production model to compare",
                   ha="center", va="center")
        right.set_axis_off()
    right.set_title("Per-intent F1: largest changes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def retrain(*, base: Dataset | str | os.PathLike[str] | None = None,
            store: EventStore | str | os.PathLike[str] | None = None, min_confidence: float = 0.5,
            reviewer: str | None = None, policy: governance.Policy | str | os.PathLike[str] | None = None,
            promote: bool = True, out_dir: str | os.PathLike[str] | None = None, name: str | None = None,
            who: str | None = None, audit: governance.AuditLog | str | os.PathLike[str] | None = None,
            approvals: str | os.PathLike[str] | None = None, min_sessions: int | None = None,
            ) -> RetrainResult:
    """Learn from corrective feedback, train a candidate on top of production, let the policy decide.

    Records ``data_import``, ``train`` and then ``promote``/``reject`` (or ``evaluate`` when
    ``promote`` is false) in the audit log. With no usable correction nothing is trained and
    only the review queue is written. Corrections pass :mod:`botkit.ops.corrections` first
    (``min_sessions`` distinct sessions agreeing on an utterance the bot was unsure about, or a
    reviewer's ``approvals`` file); the rest wait in ``corrections_review.csv``.
    """
    from botkit.core.model import TrainParams
    from botkit.core.registry import get_info, list_models
    from botkit.ops.pipeline import train_evaluate_register
    from botkit.serving.events import open_store

    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    name = name or settings.model_name
    log = audit if isinstance(audit, governance.AuditLog) else governance.AuditLog(audit)
    if policy is not None and not isinstance(policy, governance.Policy):
        policy = governance.Policy.load(policy)
    base_ds = base if isinstance(base, Dataset) else load(base, seed=settings.seed)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run = _run_dir(out_dir, stamp)
    paths = {"dir": run, "review_queue": run / "review_queue.csv"}

    opened = store is None or isinstance(store, str | os.PathLike)
    es = (open_store(settings.events_backend) if store is None
          else open_store("sqlite", path=store) if opened else store)
    try:
        chats, corrections, with_feedback = _read_events(es)  # type: ignore[arg-type]
    finally:
        if opened:
            es.close()  # type: ignore[union-attr]
    n_review = _write_review_queue(paths["review_queue"], chats, with_feedback, min_confidence)
    learnable, _accepted, held = corrections_rule.decide(
        chats, corrections, known=set(base_ds.intents) | {OOS}, min_confidence=min_confidence,
        min_sessions=settings.correction_min_sessions if min_sessions is None else min_sessions,
        approved=corrections_rule.load_approvals(approvals))
    paths["corrections_review"] = run / "corrections_review.csv"
    corrections_rule.write_review(paths["corrections_review"], held)
    examples, skipped = _examples(base_ds, chats, learnable)
    if held:
        skipped = dict(sorted({**skipped, "held_for_review": sum(len(b.requests) for b in held)}.items()))
    production = next((m["tag"] for m in reversed(list_models(name)) if m["stage"] == "production"), None)
    if not examples:
        return RetrainResult(None, production, base_ds.name, base_ds.fingerprint(), 0, n_review, skipped,
                             None, False, paths)

    ds = Dataset(name=f"{base_ds.name}+feedback-{stamp}",
                 splits={"train": [*base_ds.train, *examples], "val": list(base_ds.val),
                         "test": list(base_ds.test)},
                 replies=base_ds.replies, fallback_replies=base_ds.fallback_replies,
                 source=f"{base_ds.source or base_ds.name} + {len(examples)} corrections from the event store"
                 ).validate()
    paths["new_examples"] = run / "new_examples.jsonl"
    paths["new_examples"].write_text("".join(json.dumps({"text": t, "intent": y}, ensure_ascii=False) + "\n"
                                             for t, y in examples), encoding="utf-8")
    log.record("data_import", who=who, subject=ds.name, details={
        "fingerprint": ds.fingerprint(), "base": base_ds.name, "base_fingerprint": base_ds.fingerprint(),
        "n_new_examples": len(examples), "by_intent": dict(sorted(Counter(y for _, y in examples).items())),
        "skipped": skipped, "n_review": n_review, "min_confidence": min_confidence,
        "n_corrections": len(corrections), "sizes": ds.sizes()},
        artefacts={"new_examples.jsonl": _sha256(paths["new_examples"]),
                   "review_queue.csv": _sha256(paths["review_queue"]),
                   "corrections_review.csv": _sha256(paths["corrections_review"])})

    params = (TrainParams.from_dict(get_info(production)["metadata"].get("params") or {}) if production
              else TrainParams(seed=settings.seed))
    trained = train_evaluate_register(dataset=ds, name=name, params=params, parent=production, audit=False)
    cand_info = get_info(trained.tag)
    artefacts = dict(cand_info["metadata"].get("artifact_sha256") or {})
    log.record("train", who=who, subject=trained.tag, details={
        "parent": production, "data_name": ds.name, "data_fingerprint": ds.fingerprint(),
        "params": params.to_dict(), "metrics": cand_info["metadata"].get("metrics"),
        "report_dir": str(trained.report_dir)}, artefacts=artefacts)

    if promote:
        decision = governance.promote(trained.tag, reviewer=reviewer, policy=policy, who=who, test_data=ds,
                                      audit=log)
    else:
        decision = governance.decide(trained.tag, reviewer=reviewer, policy=policy, test_data=ds)
        log.record("evaluate", who=who, subject=trained.tag, details=decision.summary(),
                   artefacts=artefacts)
    paths["comparison"] = run / "comparison.md"
    paths["plot"] = run / "comparison.png"
    _comparison_md(paths["comparison"], stamp=stamp, base=base_ds, ds=ds, n_new=len(examples), skipped=skipped,
                   n_review=n_review, min_confidence=min_confidence, decision=decision, promote=promote)
    _comparison_png(paths["plot"], decision)
    return RetrainResult(trained.tag, production, ds.name, ds.fingerprint(), len(examples), n_review, skipped,
                         decision, promote and decision.approved, paths)
