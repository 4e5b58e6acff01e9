"""Candidate models for release drills: a deliberately worse model, trained the normal way.

A canary analysis is only believable if it rolls back a model that is really worse, not just a
replica with injected faults. :func:`train_subsampled` trains the production recipe on a fraction
of each intent's training examples (an eighth by default): same code, same features, visibly
lower accuracy and many more fallbacks.
"""

from __future__ import annotations

from dataclasses import replace

from botkit.core.config import settings
from botkit.core.data import load

__all__ = ["train_subsampled"]


def train_subsampled(fraction: float = 0.125, *, stage: str = "staging", min_per_intent: int = 2) -> str:
    """Train and register a model on ``fraction`` of every intent's training examples; its tag."""
    from botkit.ops.pipeline import train_evaluate_register

    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    ds = load(None, None, seed=settings.seed)
    by_intent: dict[str, list] = {}
    for ex in ds.train:
        by_intent.setdefault(ex[1], []).append(ex)
    keep = [ex for exs in by_intent.values() for ex in exs[: max(min_per_intent, round(len(exs) * fraction))]]
    small = replace(ds, name=f"{ds.name}-{fraction:g}", splits={**ds.splits, "train": keep})
    return train_evaluate_register(dataset=small, stage=stage).tag
