"""Metrics checked against arithmetic done by hand, the release gate and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from botkit.core.config import settings
from botkit.core.data import OOS
from botkit.core.evaluate import Evaluation, evaluate, gate_failures, metrics_from_labels, write_report

#          0    1    2      3      4    5    6    7      8      9
Y_TRUE = ["a", "a", "a",   "a",   "b", "b", "b", OOS,   OOS,   OOS]
Y_PRED = ["a", "a", OOS,   OOS,   "b", "b", "a", OOS,   OOS,   "c"]


@pytest.fixture(scope="module")
def hand() -> dict:
    return metrics_from_labels(Y_TRUE, Y_PRED)


def test_in_scope_accuracy_counts_a_fallback_as_wrong(hand: dict) -> None:
    # In scope: 0-6 (7). Right: 0, 1, 4, 5. Wrong: 2, 3 (fell back), 6 (b -> a). 4/7 = 0.5714.
    assert hand["in_scope_accuracy"] == 0.5714
    assert hand["n_in_scope"] == 7
    assert hand["n_oos"] == 3


def test_oos_recall_and_precision(hand: dict) -> None:
    # Recall: OOS truths 7, 8, 9; fell back 7, 8 -> 2/3 = 0.6667.
    assert hand["oos_recall"] == 0.6667
    # Precision: fell back 2, 3, 7, 8; really OOS 7, 8 -> 2/4 = 0.5.
    assert hand["oos_precision"] == 0.5


def test_per_intent_figures(hand: dict) -> None:
    # a:   tp 0,1 = 2; fp 6 = 1; fn 2,3 = 2 -> P 2/3, R 2/4, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    # b:   tp 4,5 = 2; fp 0;     fn 6 = 1   -> P 1,   R 2/3, F1 = (4/3)/(5/3) = 4/5
    # oos: tp 7,8 = 2; fp 2,3 = 2; fn 9 = 1 -> P 2/4, R 2/3, F1 = (2/3)/(7/6) = 4/7
    # c:   tp 0;     fp 9 = 1; fn 0         -> P 0,   R 0,   F1 0, support 0
    assert hand["per_intent"] == {
        "a": {"precision": 0.6667, "recall": 0.5, "f1": 0.5714, "support": 4},
        "b": {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3},
        OOS: {"precision": 0.5, "recall": 0.6667, "f1": 0.5714, "support": 3},
        "c": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }


def test_macro_f1_is_over_the_labels_present_in_the_truth(hand: dict) -> None:
    # Over a, b, oos (c is only predicted): (4/7 + 4/5 + 4/7) / 3 = (40/35 + 28/35) / 3 = 68/105 = 0.6476.
    # (Counting c as well would give (68/35) / 4 = 0.4857.)
    assert hand["macro_f1"] == 0.6476


def test_confused_pairs_are_counted_and_ordered_by_count(hand: dict) -> None:
    # a -> oos twice (2, 3); b -> a once (6); oos -> c once (9); ties keep first-seen order.
    assert hand["confused_pairs"] == [
        {"true": "a", "predicted": OOS, "count": 2},
        {"true": "b", "predicted": "a", "count": 1},
        {"true": OOS, "predicted": "c", "count": 1},
    ]


def test_metrics_that_cannot_be_computed_are_none() -> None:
    m = metrics_from_labels(["a", "b"], ["a", "a"])  # no OOS in truth, nothing fell back
    assert m["oos_recall"] is None
    assert m["oos_precision"] is None
    assert m["in_scope_accuracy"] == 0.5
    only_oos = metrics_from_labels([OOS, OOS], [OOS, "a"])
    assert only_oos["in_scope_accuracy"] is None
    assert (only_oos["oos_recall"], only_oos["oos_precision"]) == (0.5, 1.0)


# ---------------------------------------------------------------------------------------- gate


def test_gate_failures_give_one_line_per_broken_threshold() -> None:
    metrics = {"in_scope_accuracy": 0.8, "oos_recall": None}
    assert gate_failures(metrics, min_in_scope_accuracy=0.9, min_oos_recall=0.5) == [
        "in_scope_accuracy 0.8 is below the gate 0.9",
        "oos_recall n/a is below the gate 0.5",
    ]


def test_gate_passes_at_or_above_the_floor_and_without_floors() -> None:
    metrics = {"in_scope_accuracy": 0.9, "oos_recall": 0.7}
    assert gate_failures(metrics, min_in_scope_accuracy=0.9, min_oos_recall=0.7) == []
    assert gate_failures(metrics) == []
    assert gate_failures({"in_scope_accuracy": None}) == []


# -------------------------------------------------------------------------------- evaluate/report


def test_evaluate_adds_threshold_and_optionally_latency(trained, tiny_dataset) -> None:
    ev = evaluate(trained.model, tiny_dataset.test, measure_latency=False)
    assert ev.y_true == [y for _, y in tiny_dataset.test]
    assert len(ev.y_pred) == len(ev.confidence) == len(tiny_dataset.test)
    assert ev.metrics["threshold"] == round(trained.model.threshold, 4)
    assert "latency" not in ev.metrics
    assert set(trained.evaluation.metrics["latency"]) == {
        "single_p50_ms", "single_p95_ms", "batch32_per_text_ms", "batch32_texts_per_s"}


def _check_report(out: Path, metrics: dict) -> None:
    assert {p.name for p in out.iterdir()} == {
        "metrics.json", "confusion_hotspots.png", "confidence_histogram.png", "report.md"}
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for png in ("confusion_hotspots.png", "confidence_histogram.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert md.startswith("# Evaluation")
    assert f"| in_scope_accuracy | {metrics['in_scope_accuracy']} |" in md
    assert "![confusions](confusion_hotspots.png)" in md
    assert "![confidence](confidence_histogram.png)" in md


def test_write_report_writes_metrics_json_two_pngs_and_markdown(tmp_path: Path) -> None:
    m = metrics_from_labels(Y_TRUE, Y_PRED)
    m["threshold"] = 0.42
    ev = Evaluation(m, Y_TRUE, Y_PRED, [0.9, 0.8, 0.3, 0.2, 0.95, 0.7, 0.6, 0.1, 0.35, 0.5])
    paths = write_report(ev, tmp_path / "new" / "dir")
    _check_report(tmp_path / "new" / "dir", m)
    assert paths["markdown"] == tmp_path / "new" / "dir" / "report.md"
    assert "Weakest intents (F1): a 0.57, b 0.80" in paths["markdown"].read_text()


def test_write_report_copes_with_a_perfect_model(tmp_path: Path) -> None:
    m = metrics_from_labels(["a", OOS], ["a", OOS])
    m["threshold"] = 0.5
    write_report(Evaluation(m, ["a", OOS], ["a", OOS], [0.9, 0.2]), tmp_path)
    _check_report(tmp_path, m)


def test_training_writes_its_report_under_the_reports_dir(trained) -> None:
    assert trained.report_dir == settings.reports_dir / "eval" / trained.tag.replace(":", "-")
    _check_report(trained.report_dir, trained.evaluation.metrics)
    assert "| single_p50_ms |" in (trained.report_dir / "report.md").read_text()
