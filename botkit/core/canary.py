"""Canary analysis: is the candidate worse than production on the same live traffic?

A canary serves a small share of real traffic next to the stable replicas, *in the same time
window*, so that load, machine noise and the traffic mix hit both groups alike. This module
compares the two groups metric by metric, in the spirit of Kayenta (Spinnaker's automated canary
analysis): every metric gets a test, an effect size, and a verdict ``pass`` / ``marginal`` /
``fail``; a weighted score of the verdicts decides ``promote`` or ``rollback``.

Metrics and their statistics (all one-sided: only "canary worse" can fail):

========================  ==================================  ====================================
metric                    test                                minimum effect to fail
========================  ==================================  ====================================
error_rate (5xx and 503)  two-proportion z (Fisher if rare)   +1 percentage point   (critical)
latency_ms                Mann-Whitney U, canary > stable     median +50 % and +20 ms (critical)
fallback_rate             two-proportion z (Fisher if rare)   +3 percentage points
negative_feedback_rate    two-proportion z (Fisher if rare)   +10 percentage points
confidence                two-sample Kolmogorov-Smirnov       D >= 0.15 with a lower canary mean
========================  ==================================  ====================================

Why effect sizes as well as p-values: on thousands of requests a significance test flags differences
nobody cares about: two replicas of the *same* model on a busy 2-core machine were measured 10-25 ms
apart in median latency within one window (histogram buckets of 5/10/25/50 ms), hence the latency
floor of +50 % *and* +20 ms; a user notices neither less. A metric therefore fails only when the
difference is both significant (``p < 0.001``) and at least the minimum effect; significant but
smaller, or ``p < 0.01`` only, is ``marginal``. The strict alpha matters because five metrics are
tested per run: at 0.001 each, identical models fail a run well under 1 % of the time
(:func:`false_alarm_rate` measures it), while the faults that matter (a slow or erroring replica, a
model with many more fallbacks) give p-values far below 0.001 even on a 10 % canary of a short
window. Critical metrics (errors, latency) roll back on their own, whatever the score.

Minimum-sample rule: a metric with fewer than ``min_samples`` observations in either group is
``nodata`` and left out of the score; when the canary saw fewer than ``min_requests`` requests in
total, the decision is ``rollback`` with the reason "too few canary requests" (no evidence is not
evidence of safety).

Pure numpy/scipy, no I/O: the cluster canary, the shadow report and the tests share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

__all__ = [
    "DEFAULT_SPECS",
    "CanaryReport",
    "GroupSample",
    "MetricResult",
    "MetricSpec",
    "analyse",
    "compare_confidence",
    "compare_latency",
    "compare_proportions",
    "false_alarm_rate",
    "simulate_group",
    "two_proportion_z",
]

PASS, MARGINAL, FAIL, NODATA = "pass", "marginal", "fail", "nodata"
PROMOTE, ROLLBACK = "promote", "rollback"
_EXACT_BELOW = 10  # expected events in the smaller group below which Fisher's exact test replaces z
_VALUE = {PASS: 1.0, MARGINAL: 0.75, FAIL: 0.0}


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is judged. ``min_effect`` is in the metric's own unit (see the table above)."""

    name: str
    kind: str  # "proportion" | "latency" | "confidence"
    min_effect: float
    weight: float = 1.0
    critical: bool = False
    alpha_fail: float = 0.001
    alpha_marginal: float = 0.01
    min_samples: int = 30
    min_abs_ms: float = 5.0  # latency only: the median must also grow by this many milliseconds


DEFAULT_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("error_rate", "proportion", 0.01, critical=True, min_samples=50),
    MetricSpec("latency_ms", "latency", 0.5, critical=True, min_abs_ms=20.0),
    MetricSpec("fallback_rate", "proportion", 0.03, min_samples=50),
    MetricSpec("negative_feedback_rate", "proportion", 0.10, min_samples=20),
    MetricSpec("confidence", "confidence", 0.15),
)


@dataclass
class GroupSample:
    """What one group (stable or canary) did in the analysis window."""

    requests: int = 0  # every HTTP answer, errors included
    errors: int = 0  # 5xx and 503 answers
    latencies_ms: list[float] = field(default_factory=list)
    chats: int = 0  # answered chats (the denominator of the fallback rate)
    fallbacks: int = 0
    confidences: list[float] = field(default_factory=list)
    feedback: int = 0
    negative_feedback: int = 0

    def counts(self, metric: str) -> tuple[int, int]:
        """(events, trials) of a proportion metric."""
        return {"error_rate": (self.errors, self.requests),
                "fallback_rate": (self.fallbacks, self.chats),
                "negative_feedback_rate": (self.negative_feedback, self.feedback)}[metric]


@dataclass(frozen=True)
class MetricResult:
    """One metric's comparison: both sides, the test, the effect and the verdict in words."""

    name: str
    verdict: str
    stable: float
    canary: float
    effect: float  # canary minus stable (proportions), relative median change (latency), KS D
    p_value: float
    test: str
    n_stable: int
    n_canary: int
    weight: float
    critical: bool
    reason: str


@dataclass(frozen=True)
class CanaryReport:
    """The decision, its score and every metric behind it."""

    decision: str
    score: float
    threshold: float
    reason: str
    metrics: tuple[MetricResult, ...]

    def to_dict(self) -> dict:
        return {"decision": self.decision, "score": self.score, "threshold": self.threshold,
                "reason": self.reason, "metrics": [asdict(m) for m in self.metrics]}


# ------------------------------------------------------------------------------------ statistics
def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of "p2 > p1": (z, one-sided p). Both rates 0 or 1 give (0, 1)."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, float(stats.norm.sf(z))


def _verdict(p: float, big_enough: bool, worse: bool, spec: MetricSpec) -> str:
    if not worse or p >= spec.alpha_marginal:
        return PASS
    return FAIL if (p < spec.alpha_fail and big_enough) else MARGINAL


def _result(spec: MetricSpec, verdict: str, stable: float, canary: float, effect: float, p: float,
            test: str, n: tuple[int, int], reason: str) -> MetricResult:
    return MetricResult(spec.name, verdict, round(stable, 6), round(canary, 6), round(effect, 6),
                        float(p), test, n[0], n[1], spec.weight, spec.critical, reason)


def _nodata(spec: MetricSpec, n: tuple[int, int], test: str) -> MetricResult:
    return _result(spec, NODATA, math.nan, math.nan, math.nan, math.nan, test, n,
                   f"fewer than {spec.min_samples} observations in a group ({n[0]} stable, {n[1]} canary)")


def compare_proportions(spec: MetricSpec, stable: tuple[int, int], canary: tuple[int, int]) -> MetricResult:
    """A rate (errors, fallbacks, negative feedback): is the canary's higher, and by enough?"""
    (xs, ns), (xc, nc) = stable, canary
    if min(ns, nc) < spec.min_samples:
        return _nodata(spec, (ns, nc), "two-proportion z")
    ps, pc = xs / ns, xc / nc
    pooled = (xs + xc) / (ns + nc)
    if min(pooled, 1 - pooled) * min(ns, nc) < _EXACT_BELOW:  # rare events: the normal approximation
        test = "Fisher exact"                                  # is far too eager (3 errors in 200)
        p = float(stats.fisher_exact([[xc, nc - xc], [xs, ns - xs]], alternative="greater").pvalue)
        stat = f"p={p:.3g}"
    else:
        test = "two-proportion z"
        z, p = two_proportion_z(xs, ns, xc, nc)
        stat = f"z={z:.2f}, p={p:.3g}"
    diff = pc - ps
    verdict = _verdict(p, diff >= spec.min_effect, diff > 0, spec)
    reason = (f"canary {pc:.2%} vs stable {ps:.2%} ({diff * 100:+.2f} pt, {test} {stat}; "
              f"fails at p<{spec.alpha_fail} and >= {spec.min_effect * 100:g} pt)")
    return _result(spec, verdict, ps, pc, diff, p, test, (ns, nc), reason)


def compare_latency(spec: MetricSpec, stable: Sequence[float], canary: Sequence[float]) -> MetricResult:
    """Mann-Whitney U (canary stochastically greater) plus the relative change of the median."""
    s, c = np.asarray(stable, float), np.asarray(canary, float)
    if min(s.size, c.size) < spec.min_samples:
        return _nodata(spec, (s.size, c.size), "Mann-Whitney U")
    ms, mc = float(np.median(s)), float(np.median(c))
    p = float(stats.mannwhitneyu(c, s, alternative="greater").pvalue)
    rel = (mc - ms) / ms if ms > 0 else (math.inf if mc > 0 else 0.0)
    big = rel >= spec.min_effect and (mc - ms) >= spec.min_abs_ms
    verdict = _verdict(p, big, mc > ms, spec)
    reason = (f"median {mc:.1f} ms vs {ms:.1f} ms ({rel:+.0%}, p={p:.3g}; fails at p<{spec.alpha_fail}, "
              f">= +{spec.min_effect:.0%} and >= +{spec.min_abs_ms:g} ms)")
    return _result(spec, verdict, ms, mc, rel, p, "Mann-Whitney U", (s.size, c.size), reason)


def compare_confidence(spec: MetricSpec, stable: Sequence[float], canary: Sequence[float]) -> MetricResult:
    """KS on the confidence distributions; only a shift towards lower confidence can fail."""
    s, c = np.asarray(stable, float), np.asarray(canary, float)
    if min(s.size, c.size) < spec.min_samples:
        return _nodata(spec, (s.size, c.size), "Kolmogorov-Smirnov")
    res = stats.ks_2samp(s, c)
    d, p = float(res.statistic), float(res.pvalue)
    lower = float(c.mean()) < float(s.mean())
    verdict = _verdict(p, d >= spec.min_effect, True, spec)
    if verdict == FAIL and not lower:  # a more confident candidate is a change to look at, not a failure
        verdict = MARGINAL
    reason = (f"mean {c.mean():.3f} vs {s.mean():.3f}, KS D={d:.3f} (p={p:.3g}; fails at p<{spec.alpha_fail}, "
              f"D >= {spec.min_effect:g} and lower)")
    return _result(spec, verdict, float(s.mean()), float(c.mean()), d, p, "Kolmogorov-Smirnov",
                   (s.size, c.size), reason)


# ------------------------------------------------------------------------------------ decision
def _compare(spec: MetricSpec, stable: GroupSample, canary: GroupSample) -> MetricResult:
    if spec.kind == "proportion":
        return compare_proportions(spec, stable.counts(spec.name), canary.counts(spec.name))
    if spec.kind == "latency":
        return compare_latency(spec, stable.latencies_ms, canary.latencies_ms)
    if spec.kind == "confidence":
        return compare_confidence(spec, stable.confidences, canary.confidences)
    raise ValueError(f"unknown metric kind {spec.kind!r}")


def analyse(stable: GroupSample, canary: GroupSample, *, specs: Iterable[MetricSpec] = DEFAULT_SPECS,
            min_requests: int = 100, pass_score: float = 85.0) -> CanaryReport:
    """Score the canary against stable: 100 x weighted mean of pass=1, marginal=0.75, fail=0.

    Promote when the score reaches ``pass_score`` and no critical metric failed; otherwise roll back.
    With the default five equal weights and 85, any failing metric rolls back (score <= 80) and up
    to two marginal metrics are tolerated (a significance test at 1 % is marginal about once in 100
    comparisons even between identical models).
    """
    results = tuple(_compare(s, stable, canary) for s in specs)
    scored = [r for r in results if r.verdict != NODATA]
    total = sum(r.weight for r in scored)
    score = round(100 * sum(r.weight * _VALUE[r.verdict] for r in scored) / total, 1) if total else 0.0
    critical = [r.name for r in scored if r.critical and r.verdict == FAIL]
    if canary.requests < min_requests:
        decision, reason = ROLLBACK, f"too few canary requests ({canary.requests} < {min_requests})"
    elif critical:
        decision, reason = ROLLBACK, f"critical metric failed: {', '.join(critical)}"
    elif score < pass_score:
        failed = [r.name for r in scored if r.verdict != PASS]
        decision, reason = ROLLBACK, f"score {score:g} < {pass_score:g} ({', '.join(failed)})"
    else:
        decision, reason = PROMOTE, f"score {score:g} >= {pass_score:g}, no critical metric failed"
    return CanaryReport(decision, score, pass_score, reason, results)


# ------------------------------------------------------------------------------------ calibration
def simulate_group(rng: np.random.Generator, n: int, *, error_rate: float = 0.002, fallback_rate: float = 0.12,
                   latency_median_ms: float = 8.0, latency_sigma: float = 0.6, confidence_ab: tuple = (5.0, 2.0),
                   feedback_share: float = 0.1, negative_rate: float = 0.2) -> GroupSample:
    """A synthetic group with the shape of real traffic (lognormal latency, beta confidence)."""
    errors = int(rng.binomial(n, error_rate))
    chats = n - errors
    feedback = int(rng.binomial(chats, feedback_share))
    return GroupSample(
        requests=n, errors=errors, chats=chats, fallbacks=int(rng.binomial(chats, fallback_rate)),
        latencies_ms=list(rng.lognormal(math.log(latency_median_ms), latency_sigma, n)),
        confidences=list(rng.beta(*confidence_ab, chats)), feedback=feedback,
        negative_feedback=int(rng.binomial(feedback, negative_rate)))


def false_alarm_rate(trials: int = 500, n_stable: int = 1800, n_canary: int = 200, seed: int = 0,
                     **canary_changes: float) -> float:
    """Share of ``rollback`` decisions when canary and stable differ only by ``canary_changes``.

    With no changes this is the false-alarm rate of :func:`analyse` on same-model traffic; with a
    change (say ``latency_median_ms=20``) it is one minus the power to catch it.
    """
    rng = np.random.default_rng(seed)
    rollbacks = 0
    for _ in range(trials):
        stable = simulate_group(rng, n_stable)
        canary = simulate_group(rng, n_canary, **canary_changes)
        rollbacks += analyse(stable, canary).decision == ROLLBACK
    return rollbacks / trials
