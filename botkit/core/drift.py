"""Drift statistics: is the bot's current traffic still the traffic it was built for?

The monitor compares a window of recent traffic with a reference window (typically the days
after a release) and turns each comparison into a :class:`Check`: one number, the threshold
it was held against, a flag, and one plain sentence saying what it means. Everything here is
pure numpy/scipy with no I/O, so the monitor, the notebooks and the tests share one
implementation.

Two families of statistics are used on purpose. Significance tests (chi-square,
Kolmogorov-Smirnov, the two-proportion z-test) answer "more than chance?" and grow eager on
large windows; effect sizes (Jensen-Shannon distance, PSI, absolute rate changes) answer "by
how much?" and are noisy on small windows. Reading both, or requiring both as
:func:`rate_change` does, keeps trivia and noise from raising alarms.

No function raises on an empty window: the check comes back with value nan, not flagged,
and a sentence saying that there is not enough data.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

__all__ = [
    "Check",
    "confidence_shift",
    "ewma",
    "feedback_check",
    "feedback_score",
    "intent_distribution",
    "js_distance",
    "latency_anomalies",
    "latency_check",
    "oov_check",
    "oov_rate",
    "population_stability_index",
    "rate_change",
]

_ALPHA = 0.01  # significance level of every test here: about one false alarm per 100 comparisons
_CHI2_SMOOTHING = 1.0  # Laplace: one pseudo-count per intent in the reference
_JS_MAX = 0.1
_PSI_MAX = 0.2
_PSI_WATCH = 0.1
_PSI_EPSILON = 1e-4
_MAD_TO_SIGMA = 0.6745  # MAD of a normal distribution is 0.6745 sigma
_KS_MIN_EFFECT = 0.1  # smallest KS distance worth an alert, whatever the window size
_MAD_FLOOR = 0.05  # a flat history still tolerates a 5 % wobble of its median ...
_MAD_FLOOR_MS = 1.0  # ... and at least 1 ms: millisecond latencies jitter by that much
_MIN_HISTORY = 5
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison, ready for a report: ``value`` held against ``threshold``.

    ``meaning`` is a single sentence a newcomer can act on; ``value`` is nan when a window
    held too little data to compare (and then ``flagged`` is False).
    """

    name: str
    value: float
    threshold: float
    flagged: bool
    meaning: str

    def to_dict(self) -> dict[str, str | float | bool | None]:
        """Plain builtins for JSON reports; a nan value becomes None because JSON has no NaN."""
        return {
            "name": self.name,
            "value": None if math.isnan(self.value) else float(self.value),
            "threshold": None if math.isnan(self.threshold) else float(self.threshold),
            "flagged": bool(self.flagged),
            "meaning": self.meaning,
        }


def _not_enough(name: str, threshold: float, subject: str) -> Check:
    return Check(
        name, math.nan, threshold, False, f"There is not enough data to compare {subject} with the reference."
    )


def _distribution(counts: Sequence[float] | np.ndarray) -> np.ndarray | None:
    """Counts as proportions; None when there is nothing to normalise."""
    array = np.asarray(counts, dtype=float)
    if array.ndim != 1 or np.any(array < 0) or not np.all(np.isfinite(array)):
        raise ValueError("counts must be a flat sequence of finite numbers >= 0")
    total = array.sum()
    return array / total if total > 0 else None


def _pair(
    p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    p_dist, q_dist = _distribution(p), _distribution(q)
    if p_dist is not None and q_dist is not None and p_dist.shape != q_dist.shape:
        raise ValueError(f"both distributions need the same bins, got {p_dist.size} and {q_dist.size}")
    return None if p_dist is None or q_dist is None else (p_dist, q_dist)


def js_distance(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 between two histograms (counts or proportions).

    Symmetric, bounded in [0, 1] and defined when a bin is empty on one side, which makes it
    the effect size of choice for category mixes. nan when either side is empty.
    """
    pair = _pair(p, q)
    if pair is None:
        return math.nan
    # scipy returns the distance (the square root of the divergence); base 2 bounds it by 1 (natural log: sqrt(ln 2)).
    with np.errstate(invalid="ignore"):  # a divergence rounded to -1e-17 has no square root: it is 0
        distance = float(jensenshannon(*pair, base=2))
    return min(distance, 1.0) if math.isfinite(distance) else 0.0


def population_stability_index(
    expected_counts: Sequence[float] | np.ndarray, actual_counts: Sequence[float] | np.ndarray
) -> float:
    """PSI = sum((actual - expected) * ln(actual / expected)) over bin proportions.

    The credit-scoring classic that product teams already know how to read: below 0.1
    stable, 0.1-0.2 a moderate shift worth watching, above 0.2 a significant shift. Empty bins
    are floored at 1e-4 so that the logarithm stays finite (without renormalising); nan when
    either side is empty.
    """
    pair = _pair(expected_counts, actual_counts)
    if pair is None:
        return math.nan
    expected, actual = (np.maximum(dist, _PSI_EPSILON) for dist in pair)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _chi2_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    # A test of homogeneity on the 2 x k table: the reference is a sample too, so its own noise
    # must not count as drift (a goodness-of-fit test against it flagged 5-45 % of normal windows).
    keep = (reference_counts + current_counts) > 0
    if keep.sum() < 2 or reference_counts.sum() == 0 or current_counts.sum() == 0:
        return 1.0  # a single intent on both sides: nothing can differ
    table = np.vstack([reference_counts[keep], current_counts[keep]])
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def intent_distribution(reference: Sequence[str], current: Sequence[str]) -> list[Check]:
    """Has the mix of predicted intents moved? Three views of one question.

    * ``intent_chi2_p``: chi-square test of homogeneity on the reference and current counts
      (both are samples), flagged below 0.01 (about one false alarm in a hundred comparisons).
      An intent seen on one side only is a column with one zero, which the test handles.
      On large windows it flags even trivial moves, hence the two effect sizes below.
    * ``intent_js_distance``: Jensen-Shannon distance (base 2), flagged above 0.1, roughly
      twelve points of traffic moving between two intents that were split 50/50.
    * ``intent_psi``: population stability index, flagged above 0.2, the usual "significant
      shift" reading (below 0.1 stable, 0.1-0.2 moderate).
    """
    names = ("intent_chi2_p", "intent_js_distance", "intent_psi")
    thresholds = (_ALPHA, _JS_MAX, _PSI_MAX)
    subject = "the mix of predicted intents"
    if len(reference) == 0 or len(current) == 0:
        return [
            _not_enough(name, threshold, subject) for name, threshold in zip(names, thresholds, strict=True)
        ]
    labels = sorted(set(reference) | set(current))
    ref_tally, cur_tally = Counter(reference), Counter(current)
    ref_counts = np.array([ref_tally[label] for label in labels], dtype=float)
    cur_counts = np.array([cur_tally[label] for label in labels], dtype=float)

    p_value = _chi2_p_value(ref_counts, cur_counts)
    js = js_distance(ref_counts, cur_counts)
    psi = population_stability_index(ref_counts, cur_counts)
    return [
        Check(
            names[0],
            p_value,
            _ALPHA,
            p_value < _ALPHA,
            "The mix of predicted intents has moved away from the reference more than chance explains."
            if p_value < _ALPHA
            else "The mix of predicted intents differs from the reference no more than chance explains.",
        ),
        Check(
            names[1],
            js,
            _JS_MAX,
            js > _JS_MAX,
            "A noticeable share of messages now lands on different intents than in the reference."
            if js > _JS_MAX
            else "The share of messages per intent is close to the reference.",
        ),
        Check(names[2], psi, _PSI_MAX, psi > _PSI_MAX, _psi_reading(psi)),
    ]


def _psi_reading(psi: float) -> str:
    if psi > _PSI_MAX:
        return "The intent mix has shifted enough that the model may be facing traffic it was not built for."
    if psi > _PSI_WATCH:
        return "The intent mix has shifted a little: worth watching, not yet a reason to act."
    return "The intent mix is stable compared with the reference."


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


def confidence_shift(reference: Sequence[float], current: Sequence[float]) -> Check:
    """Has the model's confidence changed shape? Two-sample Kolmogorov-Smirnov test.

    ``value`` is the KS statistic D (largest gap between the two empirical CDFs) and
    ``threshold`` the D at which the p-value reaches 0.01 for these window sizes; flagged
    when p < 0.01. Confidence usually sags before accuracy does, so this is an early, label
    free warning. The p-value uses Smirnov's asymptotic distribution (as scipy does for large
    samples), so value, threshold and flag always agree.
    """
    name, subject = "confidence_ks", "the model's confidence scores"
    ref, cur = _finite(reference), _finite(current)
    if ref.size == 0 or cur.size == 0:
        return _not_enough(name, math.nan, subject)
    statistic = float(stats.ks_2samp(ref, cur, method="asymp").statistic)
    effective_n = max(1, round(ref.size * cur.size / (ref.size + cur.size)))
    # Significant AND large: the reference (validation split) is a little easier than live
    # traffic, so on big windows a tiny, harmless gap would otherwise be "significant".
    threshold = max(float(stats.kstwo.isf(_ALPHA, effective_n)), _KS_MIN_EFFECT)
    flagged = statistic > threshold
    return Check(
        name,
        statistic,
        threshold,
        flagged,
        "The model's confidence scores have shifted away from the reference more than chance explains."
        if flagged
        else "The model's confidence scores look like those in the reference.",
    )


def rate_change(
    name: str,
    reference_hits: int,
    reference_n: int,
    current_hits: int,
    current_n: int,
    *,
    max_increase: float = 0.10,
) -> Check:
    """Has a rate (the fallback rate, typically) risen both clearly and beyond chance?

    ``value`` is the absolute increase of the current rate over the reference rate. Flagged
    only when it exceeds ``max_increase`` (default 10 percentage points: one more message in
    ten unanswered is something users notice) AND a one-sided two-proportion z-test gives
    p < 0.01, so a small window cannot raise the alarm on noise and a huge window cannot raise
    it on a trivial rise. One-sided because only an increase is a problem.
    """
    label = name.replace("_", " ")
    for count, total in ((reference_hits, reference_n), (current_hits, current_n)):
        if not 0 <= count <= total:
            raise ValueError(f"{name}: hits must lie in [0, n], got {count} of {total}")
    if reference_n == 0 or current_n == 0:
        return _not_enough(name, max_increase, f"the {label}")
    ref_rate, cur_rate = reference_hits / reference_n, current_hits / current_n
    increase = cur_rate - ref_rate
    pooled = (reference_hits + current_hits) / (reference_n + current_n)
    std_error = math.sqrt(pooled * (1 - pooled) * (1 / reference_n + 1 / current_n))
    p_value = float(stats.norm.sf(increase / std_error)) if std_error > 0 else 1.0
    points = f"{max_increase * 100:g} percentage points"
    if increase > max_increase and p_value < _ALPHA:
        flagged, meaning = True, f"The {label} rose by more than {points}, too much to be chance."
    elif increase > max_increase:
        flagged, meaning = (
            False,
            f"The {label} rose by more than {points}, but on too few messages to rule out chance.",
        )
    else:
        flagged, meaning = False, f"The {label} has not risen by more than {points}."
    return Check(name, increase, max_increase, flagged, meaning)


def oov_rate(vocabulary: set[str], texts: Sequence[str]) -> float:
    """Share of word tokens (lower-cased ``\\w+``) missing from the model's vocabulary.

    A bag-of-words model silently ignores words it never saw, so a rising share means it reads
    less of each message. ``vocabulary`` is expected in lower case, as the vectoriser stores it.
    nan when the texts hold no words.
    """
    total = unknown = 0
    for text in texts:
        for token in _WORD.findall(text.lower()):
            total += 1
            unknown += token not in vocabulary
    return unknown / total if total else math.nan


def oov_check(reference_rate: float, current_rate: float, max_increase: float = 0.15) -> Check:
    """Flagged when the out-of-vocabulary rate rose by more than ``max_increase`` (absolute).

    15 points means roughly one more word in seven is invisible to the model: new products,
    a new language or a campaign's jargon, and time to retrain on fresh messages.
    """
    name = "oov_increase"
    if math.isnan(reference_rate) or math.isnan(current_rate):
        return _not_enough(name, max_increase, "the share of unknown words")
    increase = current_rate - reference_rate
    flagged = increase > max_increase
    return Check(
        name,
        increase,
        max_increase,
        flagged,
        "Users now write many words the model has never seen, so it understands less of each message."
        if flagged
        else "Users mostly write words the model already knows, as in the reference.",
    )


def feedback_score(ratings: Sequence[str]) -> float:
    """Share of "up" among the "up" and "down" ratings; other values are ignored, nan when none."""
    tally = Counter(ratings)
    votes = tally["up"] + tally["down"]
    return tally["up"] / votes if votes else math.nan


def feedback_check(reference: float, current: float, max_drop: float = 0.2) -> Check:
    """Flagged when the thumbs-up share fell by more than ``max_drop`` (absolute).

    Few users vote and the ones who do are unhappy more often, so the score is noisy; only a
    fall of 20 points is read as users actually being less satisfied.
    """
    name = "feedback_drop"
    if math.isnan(reference) or math.isnan(current):
        return _not_enough(name, max_drop, "the user feedback")
    drop = reference - current
    flagged = drop > max_drop
    return Check(
        name,
        drop,
        max_drop,
        flagged,
        "Users are clearly less happy with the answers than in the reference."
        if flagged
        else "Users rate the answers about as well as in the reference.",
    )


def ewma(values: Sequence[float], alpha: float) -> np.ndarray:
    """Exponentially weighted moving average, s[t] = alpha * x[t] + (1 - alpha) * s[t-1].

    Smooths noisy per-minute series for plots, so a human sees the trend a spike stands out
    from. Starts at the first finite value; a missing minute (nan) carries the last value.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    array = np.asarray(values, dtype=float).ravel()
    smoothed = np.full_like(array, math.nan)
    level = math.nan
    for k, x in enumerate(array):
        if math.isfinite(x):
            level = x if math.isnan(level) else alpha * x + (1 - alpha) * level
        smoothed[k] = level
    return smoothed


def latency_anomalies(per_minute_p95: Sequence[float], *, z: float = 3.5, window: int = 60) -> list[int]:
    """Indexes of minutes whose p95 latency spikes far above the preceding ``window`` minutes.

    Robust z-score 0.6745 * (x - median) / MAD over the trailing window, flagged above 3.5
    (Iglewicz and Hoaglin's cut-off for outliers). Median and MAD ignore the very spikes being
    hunted, unlike mean and standard deviation. Only upward spikes count, at least 5 earlier
    minutes are needed, and missing minutes (nan) are skipped. The MAD is floored at 5 % of
    the median so that a perfectly flat history does not turn a 1 ms wobble into an alarm.
    """
    if z <= 0:
        raise ValueError(f"z must be > 0, got {z!r}")
    if window < _MIN_HISTORY:
        raise ValueError(f"window must hold at least {_MIN_HISTORY} minutes, got {window!r}")
    values = np.asarray(per_minute_p95, dtype=float).ravel()
    anomalies: list[int] = []
    for minute, x in enumerate(values):
        history = values[max(0, minute - window) : minute]
        history = history[np.isfinite(history)]
        if not math.isfinite(x) or history.size < _MIN_HISTORY:
            continue
        median = float(np.median(history))
        mad = float(np.median(np.abs(history - median)))
        scale = max(mad, _MAD_FLOOR * abs(median), _MAD_FLOOR_MS)
        if _MAD_TO_SIGMA * (x - median) / scale > z:
            anomalies.append(minute)
    return anomalies


def latency_check(per_minute_p95: Sequence[float]) -> Check:
    """Flagged when any minute's p95 latency is anomalous (see :func:`latency_anomalies`).

    ``value`` is the number of anomalous minutes; any one is worth a look because users feel
    a slow minute even if the hourly average hides it.
    """
    name = "latency_anomalies"
    if _finite(per_minute_p95).size <= _MIN_HISTORY:
        return _not_enough(name, 0.0, "latency")
    count = len(latency_anomalies(per_minute_p95))
    return Check(
        name,
        float(count),
        0.0,
        count > 0,
        f"In {count} minute(s) the 95th-percentile latency jumped far above its recent level."
        if count
        else "Latency stayed within its recent normal range in every minute.",
    )
