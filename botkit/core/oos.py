"""Out-of-scope scores: the classifier's confidence, optionally blended with embedding distance.

Why a second signal: a linear classifier is confident far from its training data (a margin
grows with distance), so "what is the capital of Peru" can get a confident intent. How close a
message lies to the nearest intent's centroid in the embedding space does not have that flaw.
The blend weight and the threshold are both tuned on the validation split.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALPHAS", "auroc", "centroids", "nearest_similarity", "tune_blend", "tune_threshold"]

ALPHAS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8)  # weight of the embedding similarity in the blend


def tune_threshold(confidence: np.ndarray, correct: np.ndarray, is_oos: np.ndarray,
                   predicted_oos: np.ndarray, max_in_scope_drop: float) -> float:
    """Pick the score threshold below which the bot falls back.

    Among thresholds that keep validation in-scope accuracy within ``max_in_scope_drop`` of
    the best reachable, take the one with the highest out-of-scope recall: users notice a
    wrong answer to a real question more than a polite fallback to an odd one.
    """
    return _tune(confidence, correct, is_oos, predicted_oos, max_in_scope_drop)[0]


def _tune(score: np.ndarray, correct: np.ndarray, is_oos: np.ndarray, predicted_oos: np.ndarray,
          max_in_scope_drop: float) -> tuple[float, float, float]:
    """(threshold, val in-scope accuracy, val OOS recall) of the chosen threshold."""
    if not is_oos.any() or is_oos.all():
        return 0.0, float(np.mean(correct[~is_oos] & ~predicted_oos[~is_oos])) if (~is_oos).any() else 0.0, 0.0
    candidates = np.unique(np.concatenate([[0.0], np.round(score, 4)]))
    rows = []
    for t in candidates:
        fallback = predicted_oos | (score < t)
        acc = float(np.mean(correct[~is_oos] & ~fallback[~is_oos]))
        rec = float(np.mean(fallback[is_oos]))
        rows.append((float(t), acc, rec))
    best_acc = max(r[1] for r in rows)
    ok = [r for r in rows if r[1] >= best_acc - max_in_scope_drop]
    # Highest recall; ties go to the lower threshold (fewer needless fallbacks).
    return max(ok, key=lambda r: (r[2], -r[0]))


def centroids(emb: np.ndarray, labels: np.ndarray, classes: list[str], oos: str) -> np.ndarray:
    """Unit-length mean embedding of every in-scope class (rows in ``classes`` order, OOS left out)."""
    rows = [emb[labels == c].mean(axis=0) for c in classes if c != oos]
    c = np.vstack(rows).astype(np.float32)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9)


def nearest_similarity(emb: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Cosine similarity to the nearest in-scope centroid (embeddings are unit length)."""
    return (emb @ cents.T).max(axis=1)


def tune_blend(conf: np.ndarray, sim: np.ndarray, correct: np.ndarray, is_oos: np.ndarray,
               predicted_oos: np.ndarray, max_in_scope_drop: float) -> tuple[float, float]:
    """(alpha, threshold) for ``score = (1 - alpha) * confidence + alpha * similarity`` on validation."""
    best = (-1.0, 0.0, 0.0)  # recall, alpha, threshold
    for alpha in ALPHAS:
        score = (1 - alpha) * conf + alpha * sim
        t, _, rec = _tune(score, correct, is_oos, predicted_oos, max_in_scope_drop)
        if rec > best[0] + 1e-9:  # ties keep the smaller alpha
            best = (rec, alpha, t)
    return best[1], best[2]


def auroc(score: np.ndarray, is_oos: np.ndarray) -> float | None:
    """Area under the ROC curve of "in scope" ranked by ``score`` (1.0: every OOS text scores lower)."""
    pos, neg = score[~is_oos], score[is_oos]
    if not len(pos) or not len(neg):
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))  # ties get average ranks
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
