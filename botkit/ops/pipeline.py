"""Train, evaluate and register a bot in one call: what `botkit train` and `make run` do.

One function so the CLI, the notebooks and the retraining loop produce models the same way,
with the same metadata and the same report layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from botkit.core.config import settings
from botkit.core.data import Dataset, load
from botkit.core.evaluate import Evaluation, evaluate, write_report
from botkit.core.model import IntentModel, TrainParams
from botkit.core.registry import save_model

__all__ = ["TrainResult", "train_evaluate_register"]


@dataclass(frozen=True)
class TrainResult:
    tag: str
    model: IntentModel
    dataset: Dataset
    evaluation: Evaluation
    report_dir: Path


def train_evaluate_register(data: str | Path | None = None, fmt: str | None = None, *,
                            name: str | None = None, stage: str = "staging",
                            params: TrainParams | None = None, parent: str | None = None,
                            dataset: Dataset | None = None, audit: bool = True,
                            who: str | None = None) -> TrainResult:
    """Load (or take) a data set, train, evaluate on its test split, store, write the report.

    Records ``train`` in the audit log (data fingerprint, parameters, metrics, artefact hashes)
    unless ``audit`` is false (retraining records its own, richer entry).
    """
    ds = dataset or load(data, fmt, seed=settings.seed)
    model = IntentModel.train(ds, params or TrainParams(seed=settings.seed))
    ev = evaluate(model, ds.test)
    tag = save_model(model, ds, ev.metrics, name=name or settings.model_name, stage=stage, parent=parent)
    report_dir = settings.reports_dir / "eval" / tag.replace(":", "-")
    write_report(ev, report_dir)
    if audit:
        from botkit.ops.governance import record_training

        record_training(tag, who=who, data=ds, report_dir=str(report_dir))
    return TrainResult(tag, model, ds, ev, report_dir)
