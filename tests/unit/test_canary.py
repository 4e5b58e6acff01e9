"""Canary statistics: hand-checkable cases, the decision rule, and the measured false-alarm rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from botkit.core.canary import (
    DEFAULT_SPECS,
    GroupSample,
    MetricSpec,
    analyse,
    compare_confidence,
    compare_latency,
    compare_proportions,
    false_alarm_rate,
    simulate_group,
    two_proportion_z,
)

SPEC = {s.name: s for s in DEFAULT_SPECS}


def test_two_proportion_z_matches_the_textbook_formula():
    # 10/100 vs 20/100: pooled 0.15, se = sqrt(0.15 * 0.85 * (1/100 + 1/100)) = 0.050498
    z, p = two_proportion_z(10, 100, 20, 100)
    assert z == pytest.approx(0.10 / math.sqrt(0.15 * 0.85 * 0.02), rel=1e-9)
    assert z == pytest.approx(1.980, abs=1e-3)
    assert p == pytest.approx(0.0239, abs=1e-3)  # one-sided normal tail at 1.98


def test_two_proportion_z_with_no_events_or_no_trials_is_neutral():
    assert two_proportion_z(0, 100, 0, 100) == (0.0, 1.0)
    assert two_proportion_z(0, 0, 5, 10) == (0.0, 1.0)


def test_much_higher_fallback_rate_fails():
    r = compare_proportions(SPEC["fallback_rate"], (120, 1000), (60, 200))  # 12 % vs 30 %
    assert r.verdict == "fail" and r.effect == pytest.approx(0.18) and r.p_value < 1e-6


def test_lower_rate_in_the_canary_passes():
    assert compare_proportions(SPEC["fallback_rate"], (300, 1000), (10, 200)).verdict == "pass"


def test_significant_but_tiny_difference_is_only_marginal():
    # 10.0 % vs 11.0 % on 100k each: z ~ 7.3, but 1 pt is below the 3 pt minimum effect
    r = compare_proportions(SPEC["fallback_rate"], (10_000, 100_000), (11_000, 100_000))
    assert r.p_value < 1e-6 and r.verdict == "marginal"


def test_three_errors_in_two_hundred_use_the_exact_test_and_do_not_fail():
    # z-test would say p ~ 1e-4; Fisher's exact test says ~0.01: rare events are not evidence enough
    r = compare_proportions(SPEC["error_rate"], (2, 1800), (3, 200))
    assert r.test == "Fisher exact" and r.p_value > 0.001 and r.verdict != "fail"


def test_a_fifth_of_errors_fails_the_exact_test():
    r = compare_proportions(SPEC["error_rate"], (1, 1800), (40, 200))
    assert r.test == "Fisher exact" and r.verdict == "fail"


def test_mann_whitney_exact_p_value_on_a_tiny_hand_case():
    # canary [4, 5, 6] all above stable [1, 2, 3]: U = 9 = n1*n2, exact one-sided p = 1/C(6,3) = 0.05
    spec = MetricSpec("latency_ms", "latency", 0.25, min_samples=3)
    r = compare_latency(spec, [1, 2, 3], [4, 5, 6])
    assert r.p_value == pytest.approx(0.05)
    assert r.verdict == "pass"  # 0.05 is not below the 0.01 marginal level


def test_slower_canary_fails_latency_and_a_faster_one_passes():
    rng = np.random.default_rng(1)
    stable = rng.lognormal(math.log(8), 0.5, 1000)
    assert compare_latency(SPEC["latency_ms"], stable, stable[:200] + 200).verdict == "fail"
    assert compare_latency(SPEC["latency_ms"], stable, stable[:200] * 0.5).verdict == "pass"


def test_slower_by_less_than_the_minimum_effect_is_marginal_not_fail():
    rng = np.random.default_rng(2)
    stable = rng.lognormal(math.log(8), 0.3, 5000)
    canary = rng.lognormal(math.log(8 * 1.1), 0.3, 5000)  # +10 %: significant, below +50 % and +20 ms
    r = compare_latency(SPEC["latency_ms"], stable, canary)
    assert r.p_value < 0.001 and r.verdict == "marginal"


def test_lower_confidence_fails_but_higher_confidence_is_only_marginal():
    rng = np.random.default_rng(3)
    stable = rng.beta(5, 2, 1000)
    assert compare_confidence(SPEC["confidence"], stable, rng.beta(2, 2, 300)).verdict == "fail"
    assert compare_confidence(SPEC["confidence"], stable, rng.beta(12, 2, 300)).verdict == "marginal"


def test_too_few_observations_give_nodata():
    r = compare_latency(SPEC["latency_ms"], [5.0] * 100, [50.0] * 5)
    assert r.verdict == "nodata" and math.isnan(r.p_value)


def test_one_failing_metric_of_five_rolls_back_with_score_80():
    rng = np.random.default_rng(4)
    stable = simulate_group(rng, 2000)
    canary = simulate_group(rng, 400, fallback_rate=0.35)
    rep = analyse(stable, canary)
    verdicts = {m.name: m.verdict for m in rep.metrics}
    assert verdicts["fallback_rate"] == "fail"
    assert rep.decision == "rollback"
    assert rep.score <= 80


def test_same_traffic_promotes_with_a_full_score():
    rng = np.random.default_rng(5)
    rep = analyse(simulate_group(rng, 2000), simulate_group(rng, 400))
    assert rep.decision == "promote" and rep.score >= 85


def test_a_failing_critical_metric_rolls_back_even_if_others_pass():
    rng = np.random.default_rng(6)
    rep = analyse(simulate_group(rng, 2000), simulate_group(rng, 400, error_rate=0.2))
    assert rep.decision == "rollback" and "error_rate" in rep.reason


def test_too_few_canary_requests_roll_back():
    rng = np.random.default_rng(7)
    rep = analyse(simulate_group(rng, 2000), simulate_group(rng, 50), min_requests=100)
    assert rep.decision == "rollback" and "too few canary requests" in rep.reason


def test_report_serialises_every_metric():
    rep = analyse(GroupSample(requests=200, chats=200), GroupSample(requests=200, chats=200))
    d = rep.to_dict()
    assert [m["name"] for m in d["metrics"]] == [s.name for s in DEFAULT_SPECS]


def test_false_alarm_rate_on_identical_traffic_is_below_one_percent():
    # measured: about 0.2 % over 1000 trials (seed 0); 400 trials keep the test quick
    assert false_alarm_rate(trials=400, seed=11) <= 0.01


@pytest.mark.parametrize("change", [{"latency_median_ms": 40.0}, {"error_rate": 0.08},
                                    {"fallback_rate": 0.3}, {"confidence_ab": (2.5, 2.0)}])
def test_real_regressions_are_caught_nine_times_in_ten(change):
    assert false_alarm_rate(trials=60, seed=12, **change) >= 0.9
