"""Cross-validation, learning curves, the recipe comparison and the conflict report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.core.data import OOS, SPLITS, Dataset, conflicts
from botkit.core.model import TrainParams
from botkit.ops.quality import (
    _folds,
    compare_recipes,
    cross_validate,
    learning_curve,
    plot_learning_curve,
    recipe_table,
)

FAST = TrainParams(recipe="tfidf")


def test_folds_are_stratified_disjoint_and_cover_everything(tiny_dataset: Dataset) -> None:
    pool = [ex for s in SPLITS for ex in tiny_dataset.split(s)]
    folds = _folds(pool, 3, seed=1)
    flat = sorted(i for f in folds for i in f)
    assert flat == list(range(len(pool)))
    for f in folds:
        assert {pool[i][1] for i in f} == {y for _, y in pool}  # every label in every fold
    assert max(map(len, folds)) - min(map(len, folds)) <= 1


def test_cross_validation_reports_mean_and_std_of_every_metric(tiny_dataset: Dataset) -> None:
    cv = cross_validate(tiny_dataset, 3, FAST, seed=7)
    assert len(cv.folds) == 3
    for key in ("in_scope_accuracy", "oos_recall", "macro_f1", "oos_auroc"):
        values = [f[key] for f in cv.folds]
        assert cv.mean[key] == pytest.approx(sum(values) / 3)
        assert cv.std[key] >= 0.0
    assert next(r[0] for r in cv.rows()) == "in_scope_accuracy"
    assert cross_validate(tiny_dataset, 3, FAST, seed=7).mean == cv.mean  # seeded


def test_cross_validation_refuses_more_folds_than_a_label_has(tiny_dataset: Dataset) -> None:
    with pytest.raises(ValueError, match="stratified folds"):
        cross_validate(tiny_dataset, 50, FAST)


def test_learning_curve_grows_the_training_set_and_plots(tiny_dataset: Dataset, tmp_path: Path) -> None:
    rows = learning_curve(tiny_dataset, (25, 50, 100), FAST)
    sizes = [r["n_train"] for r in rows]
    assert sizes == sorted(sizes) and sizes[-1] == len(tiny_dataset.train)
    assert all(r["in_scope_accuracy"] is not None for r in rows)
    png = plot_learning_curve(rows, tmp_path / "lc.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="percents"):
        learning_curve(tiny_dataset, (0,), FAST)


def test_recipe_comparison_trains_every_recipe_on_the_same_splits(tiny_dataset: Dataset) -> None:
    rows = compare_recipes(tiny_dataset, measure_latency=False)
    assert len(rows) == 7
    assert {r["recipe"].split(",")[0] for r in rows} == {"tfidf", "emb", "tfidf+emb"}
    for r in rows:
        assert 0.0 <= r["in_scope_accuracy"] <= 1.0 and 0.0 <= r["oos_auroc"] <= 1.0
    table = recipe_table(rows)
    assert table.count("\n") == len(rows) + 1 and "oos auroc" in table and "train cpu s" in table


def test_conflicts_report_near_duplicates_with_different_intents(tiny_dataset: Dataset) -> None:
    assert conflicts(tiny_dataset) == []
    train = [*tiny_dataset.train, ("Where is my order??", "refund")]  # the same text as order_status
    found = conflicts(replace(tiny_dataset, splits={**tiny_dataset.splits, "train": train}))
    assert len(found) == 1
    c = found[0]
    assert {c["a_intent"], c["b_intent"]} == {"order_status", "refund"} and c["similarity"] >= 0.99
    assert OOS not in (c["a_intent"], c["b_intent"])


def test_cli_eval_cv_and_learning_curve_write_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "q.json"
    rc = main(["eval", "--data", "shopbot-de", "--recipe", "tfidf", "--cv", "2", "--learning-curve", "100",
               "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["cv"]["k"] == 2 and set(doc["cv"]["mean"]) >= {"in_scope_accuracy", "oos_recall"}
    assert [r["percent"] for r in doc["learning_curve"]] == [100]
    printed = capsys.readouterr().out
    assert "mean ± std over 2 folds" in printed and "learning_curve.png" in printed


def test_cli_rejects_a_bad_learning_curve_list(capsys) -> None:
    assert main(["eval", "--data", "shopbot-de", "--learning-curve", "10,abc"]) == 2
    assert "--learning-curve" in capsys.readouterr().err
