"""Drift statistics are checked against values worked out by hand, not against themselves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from botkit.core.drift import (
    Check,
    confidence_shift,
    ewma,
    feedback_check,
    feedback_score,
    intent_distribution,
    js_distance,
    latency_anomalies,
    latency_check,
    oov_check,
    oov_rate,
    population_stability_index,
    rate_change,
)

# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def test_psi_of_even_split_against_quarter_three_quarters_matches_hand_computation() -> None:
    # expected [50, 50] -> (0.5, 0.5); actual [25, 75] -> (0.25, 0.75)
    # PSI = (0.25 - 0.5) * ln(0.25 / 0.5) + (0.75 - 0.5) * ln(0.75 / 0.5)
    #     = 0.25 * ln 2 + 0.25 * ln 1.5 = 0.25 * ln 3 = 0.274653...
    assert population_stability_index([50, 50], [25, 75]) == pytest.approx(math.log(3) / 4, rel=1e-12)


def test_psi_floors_an_empty_bin_at_epsilon() -> None:
    # expected [100, 0] -> (1, 0 -> 1e-4); actual (0.5, 0.5), no renormalisation
    # PSI = (0.5 - 1) * ln(0.5 / 1) + (0.5 - 1e-4) * ln(0.5 / 1e-4)
    #     = 0.5 * ln 2 + 0.4999 * ln 5000 = 0.346574 + 4.257745 = 4.604318...
    expected = 0.5 * math.log(2) + 0.4999 * math.log(5000)
    assert population_stability_index([100, 0], [50, 50]) == pytest.approx(expected, rel=1e-12)


def test_psi_of_identical_histograms_is_zero() -> None:
    assert population_stability_index([3, 5, 2], [30, 50, 20]) == pytest.approx(0.0, abs=1e-15)


def test_js_distance_of_disjoint_distributions_is_one() -> None:
    # m = (0.5, 0.5); KL(p||m) = 1 * log2(1 / 0.5) = 1 = KL(q||m); JSD = 1, distance sqrt(1) = 1
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0, rel=1e-12)


def test_js_distance_of_two_two_bin_distributions_matches_hand_computation() -> None:
    # p = (0.5, 0.5), q = (1, 0), m = (0.75, 0.25)
    # KL(p||m) = 0.5 * log2(0.5/0.75) + 0.5 * log2(0.5/0.25) = 0.5 * log2(2/3) + 0.5
    # KL(q||m) = 1 * log2(1/0.75) = log2(4/3)
    # JSD = (KL(p||m) + KL(q||m)) / 2 = 0.311278..., distance = sqrt(JSD) = 0.557923...
    divergence = (0.5 * math.log2(2 / 3) + 0.5 + math.log2(4 / 3)) / 2
    assert js_distance([0.5, 0.5], [1, 0]) == pytest.approx(math.sqrt(divergence), rel=1e-12)
    assert js_distance([5, 5], [8, 0]) == pytest.approx(math.sqrt(divergence), rel=1e-12)  # counts work too


def test_js_distance_is_symmetric_and_zero_for_identical_histograms() -> None:
    assert js_distance([1, 2, 3], [3, 2, 1]) == pytest.approx(js_distance([3, 2, 1], [1, 2, 3]))
    assert js_distance([2, 2], [7, 7]) == 0.0


def test_building_blocks_return_nan_for_empty_histograms() -> None:
    assert math.isnan(js_distance([], []))
    assert math.isnan(js_distance([0, 0], [1, 1]))
    assert math.isnan(population_stability_index([1, 1], [0, 0]))


def test_building_blocks_reject_mismatched_or_negative_counts() -> None:
    with pytest.raises(ValueError, match="same bins"):
        js_distance([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=">= 0"):
        population_stability_index([1, -1], [1, 1])


# --------------------------------------------------------------------------------------------
# Intent mix
# --------------------------------------------------------------------------------------------


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_intent_chi_square_is_a_homogeneity_test_matching_hand_computation() -> None:
    # table [[49, 49], [30, 70]]: row sums 98, 100; column sums 79, 119; N = 198
    # expected = row * col / N: 39.101, 58.899 / 39.899, 60.101 (|observed - expected| = 9.899 everywhere)
    # chi2 = 9.899^2 * (1/39.101 + 1/58.899 + 1/39.899 + 1/60.101) = 8.256, 1 degree of freedom
    # p = P(chi2_1 > 8.256) = erfc(sqrt(8.256 / 2)) = 0.00406 < 0.01
    checks = _by_name(intent_distribution(["a"] * 49 + ["b"] * 49, ["a"] * 30 + ["b"] * 70))
    chi2 = checks["intent_chi2_p"]
    n, rows, cols, obs = 198, (98, 100), (79, 119), ((49, 49), (30, 70))
    stat = sum((obs[i][j] - rows[i] * cols[j] / n) ** 2 / (rows[i] * cols[j] / n) for i in (0, 1) for j in (0, 1))
    assert stat == pytest.approx(8.2561, abs=1e-3)
    assert chi2.value == pytest.approx(math.erfc(math.sqrt(stat / 2)), rel=1e-9)
    assert chi2.threshold == 0.01
    assert chi2.flagged
    # JS: p = (0.5, 0.5), q = (0.3, 0.7) -> 0.174 > 0.1; PSI: 0.2 ln(5/3) + 0.2 ln(1.4) = 0.169
    assert checks["intent_js_distance"].flagged
    assert checks["intent_psi"].value == pytest.approx(0.2 * math.log(5 / 3) + 0.2 * math.log(1.4))
    assert not checks["intent_psi"].flagged  # between 0.1 and 0.2: "worth watching"
    assert "worth watching" in checks["intent_psi"].meaning


def test_intent_unseen_in_reference_is_smoothed_and_flagged_not_an_error() -> None:
    checks = _by_name(intent_distribution(["a"] * 48 + ["b"] * 48, ["a"] * 10 + ["b"] * 10 + ["c"] * 10))
    # smoothed reference (49, 49, 1) / 99: "c" expects 30/99 = 0.303 messages and got 10
    assert math.isfinite(checks["intent_chi2_p"].value)
    assert all(check.flagged for check in checks.values())


def test_identical_intent_mixes_are_not_flagged() -> None:
    window = ["greet"] * 80 + ["refund"] * 20
    checks = intent_distribution(window, list(reversed(window)))
    assert [check.flagged for check in checks] == [False, False, False]
    assert _by_name(checks)["intent_js_distance"].value == 0.0


def test_a_single_intent_on_both_sides_is_not_flagged() -> None:
    checks = _by_name(intent_distribution(["greet"] * 5, ["greet"] * 9))
    assert checks["intent_chi2_p"].value == 1.0
    assert not any(check.flagged for check in checks.values())


@pytest.mark.parametrize(("reference", "current"), [(["a", "b"], []), ([], ["a"]), ((), ())])
def test_empty_intent_window_gives_nan_unflagged_checks(reference: list[str], current: list[str]) -> None:
    checks = intent_distribution(reference, current)
    assert [check.name for check in checks] == ["intent_chi2_p", "intent_js_distance", "intent_psi"]
    for check in checks:
        assert math.isnan(check.value)
        assert not check.flagged
        assert "not enough data" in check.meaning


# --------------------------------------------------------------------------------------------
# Confidence
# --------------------------------------------------------------------------------------------


def test_ks_statistic_of_two_tiny_samples_matches_hand_computation() -> None:
    # ECDFs of [1,2,3,4] and [3,4,5,6]: at x=2 they are 2/4 and 0, at x=3 3/4 and 1/4,
    # at x=4 1 and 2/4: the largest gap D = 0.5. With 4 + 4 values that is no evidence.
    check = confidence_shift([1, 2, 3, 4], [3, 4, 5, 6])
    assert check.value == 0.5
    assert not check.flagged


def test_ks_threshold_is_close_to_the_textbook_critical_value() -> None:
    # c(0.01) * sqrt((n + m) / (n m)) = 1.628 * sqrt(400 / 40000) = 0.1628 for n = m = 200
    check = confidence_shift(np.linspace(0, 1, 200), np.linspace(0, 1, 200))
    assert check.threshold == pytest.approx(0.1628, rel=0.02)
    assert check.value == 0.0
    assert not check.flagged


def test_clearly_lower_confidence_is_flagged() -> None:
    rng = np.random.default_rng(1)
    check = confidence_shift(rng.beta(8, 2, 500), rng.beta(4, 4, 500))
    assert check.flagged
    assert check.value > check.threshold


def test_confidence_from_the_same_distribution_is_not_flagged() -> None:
    rng = np.random.default_rng(2)
    check = confidence_shift(rng.beta(8, 2, 500), rng.beta(8, 2, 500))
    assert not check.flagged
    assert check.value <= check.threshold


def test_empty_confidence_window_is_not_enough_data() -> None:
    check = confidence_shift([0.9, 0.8], [])
    assert math.isnan(check.value)
    assert not check.flagged
    assert "not enough data" in check.meaning


# --------------------------------------------------------------------------------------------
# Rates: fallback, out-of-vocabulary, feedback
# --------------------------------------------------------------------------------------------


def test_fallback_rise_that_passes_the_z_test_is_flagged() -> None:
    # 10/100 -> 23/100: rise 0.13 > 0.10; pooled p = 33/200 = 0.165
    # se = sqrt(0.165 * 0.835 * (1/100 + 1/100)) = 0.052493; z = 0.13 / 0.052493 = 2.4765
    # one-sided p = 0.0066 < 0.01
    check = rate_change("fallback_rate", 10, 100, 23, 100)
    assert check.value == pytest.approx(0.13)
    assert check.threshold == 0.10
    assert check.flagged


def test_fallback_rise_above_the_limit_but_within_chance_is_not_flagged() -> None:
    # 10/100 -> 21/100: rise 0.11 > 0.10; pooled p = 0.155
    # se = sqrt(0.155 * 0.845 * 0.02) = 0.051181; z = 0.11 / 0.051181 = 2.149; p = 0.0158 > 0.01
    check = rate_change("fallback_rate", 10, 100, 21, 100)
    assert check.value == pytest.approx(0.11)
    assert not check.flagged
    assert "chance" in check.meaning


def test_significant_but_small_fallback_rise_is_not_flagged() -> None:
    # 10.0 % -> 10.5 % on 100k messages each is significant (z = 3.7) but only half a point
    check = rate_change("fallback_rate", 10_000, 100_000, 10_500, 100_000)
    assert not check.flagged


def test_equal_rates_of_zero_are_not_flagged() -> None:
    check = rate_change("fallback_rate", 0, 50, 0, 50)  # pooled p = 0: no variance, no change
    assert check.value == 0.0
    assert not check.flagged


def test_rate_change_on_an_empty_window_is_not_enough_data() -> None:
    check = rate_change("fallback_rate", 3, 100, 0, 0)
    assert math.isnan(check.value)
    assert not check.flagged
    assert "not enough data" in check.meaning


def test_rate_change_rejects_more_hits_than_messages() -> None:
    with pytest.raises(ValueError, match="hits"):
        rate_change("fallback_rate", 5, 4, 0, 10)


def test_oov_rate_counts_lower_cased_word_tokens() -> None:
    # tokens: where is my parcel order 66 -> "parcel" and "66" unknown: 2 / 6
    rate = oov_rate({"where", "is", "my", "order"}, ["Where is my parcel?", "ORDER 66!"])
    assert rate == pytest.approx(1 / 3)


@pytest.mark.parametrize("texts", [[], [""], ["?! ..."]])
def test_oov_rate_without_words_is_nan(texts: list[str]) -> None:
    assert math.isnan(oov_rate({"hello"}, texts))


def test_oov_check_flags_a_rise_of_more_than_fifteen_points() -> None:
    assert oov_check(0.05, 0.25).flagged  # +0.20
    assert not oov_check(0.05, 0.15).flagged  # +0.10
    assert oov_check(0.05, 0.25).value == pytest.approx(0.20)
    assert not oov_check(math.nan, 0.3).flagged


def test_feedback_score_is_the_share_of_up_among_votes() -> None:
    assert feedback_score(["up", "up", "down", "meh"]) == pytest.approx(2 / 3)
    assert math.isnan(feedback_score([]))
    assert math.isnan(feedback_score(["meh"]))


def test_feedback_check_flags_a_drop_of_more_than_twenty_points() -> None:
    drop = feedback_check(0.8, 0.5)
    assert drop.value == pytest.approx(0.3)
    assert drop.flagged
    assert not feedback_check(0.8, 0.7).flagged
    assert not feedback_check(0.5, 0.9).flagged  # happier users are not drift to worry about


def test_feedback_check_without_votes_is_not_enough_data() -> None:
    check = feedback_check(0.8, feedback_score([]))
    assert math.isnan(check.value)
    assert not check.flagged


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


def test_robust_z_score_threshold_matches_hand_computation() -> None:
    # history 100, 120, 80, 110, 90: median 100, |deviations| 0, 20, 20, 10, 10 -> MAD 10 (over the 5 ms floor)
    # x = 151: 0.6745 * 51 / 10 = 3.44 <= 3.5, normal; x = 152: 0.6745 * 52 / 10 = 3.51 > 3.5
    history = [100, 120, 80, 110, 90]
    assert latency_anomalies([*history, 151]) == []
    assert latency_anomalies([*history, 152]) == [5]


def test_latency_spike_at_minute_k_is_found_and_flat_noise_is_not() -> None:
    rng = np.random.default_rng(7)
    p95 = rng.normal(200, 5, 180)
    assert latency_anomalies(p95) == []
    assert not latency_check(p95).flagged
    p95[90] = 260
    assert latency_anomalies(p95) == [90]
    check = latency_check(p95)
    assert check.flagged
    assert check.value == 1.0


def test_flat_history_does_not_turn_a_tiny_wobble_into_an_anomaly() -> None:
    # MAD = 0, floored at 5 % of the median (5 ms): 0.6745 * 10 / 5 = 1.35, but 0.6745 * 30 / 5 = 4.05
    assert latency_anomalies([100] * 10 + [110]) == []
    assert latency_anomalies([100] * 10 + [130]) == [10]
    # millisecond latencies: the 1 ms floor wins: 11.5 -> 14.9 is 0.6745 * 3.4 / 1 = 2.3, normal
    assert latency_anomalies([11.5] * 10 + [14.9]) == []


def test_latency_dips_missing_minutes_and_short_history_are_not_anomalies() -> None:
    assert latency_anomalies([100, 102, 98, 101, 99, 10]) == []  # faster is not a problem
    assert latency_anomalies([100, 500]) == []  # one minute of history is not enough
    assert latency_anomalies([100, 102, math.nan, 98, 101, 99, math.nan, 400]) == [7]


def test_latency_history_is_only_the_trailing_window() -> None:
    # With window=5 the old plateau at 300 is forgotten, so returning to it is a spike.
    series = [300] * 5 + [100, 102, 98, 101, 99, 300]
    assert latency_anomalies(series, window=5) == [10]
    assert latency_anomalies(series, window=60) == []


def test_latency_check_on_an_empty_or_short_series_is_not_enough_data() -> None:
    for series in ([], [120.0, 130.0]):
        check = latency_check(series)
        assert math.isnan(check.value)
        assert not check.flagged
        assert "not enough data" in check.meaning


def test_ewma_matches_hand_computation_and_carries_over_missing_minutes() -> None:
    # s0 = 10; s1 = 0.5*20 + 0.5*10 = 15; s2 = 0.5*30 + 0.5*15 = 22.5
    assert ewma([10, 20, 30], 0.5).tolist() == [10, 15, 22.5]
    smoothed = ewma([math.nan, 10, math.nan, 20], 0.5)
    assert math.isnan(smoothed[0])
    assert smoothed[1:].tolist() == [10, 10, 15]
    assert ewma([], 0.3).size == 0
    with pytest.raises(ValueError, match="alpha"):
        ewma([1.0], 0)


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def test_check_to_dict_is_strict_json_with_nan_as_none() -> None:
    check = intent_distribution([], ["a"])[0]
    data = check.to_dict()
    assert data["value"] is None
    assert data["flagged"] is False
    json.dumps(data, allow_nan=False)
    assert Check("x", 0.5, 0.1, True, "A sentence.").to_dict()["value"] == 0.5


def test_every_meaning_is_one_plain_sentence() -> None:
    checks = [
        *intent_distribution(["a"] * 49 + ["b"] * 49, ["a"] * 30 + ["b"] * 70),
        *intent_distribution(["a"], ["a"]),
        *intent_distribution([], []),
        confidence_shift([0.9, 0.8, 0.7], [0.1, 0.2]),
        rate_change("fallback_rate", 10, 100, 23, 100),
        rate_change("fallback_rate", 10, 100, 21, 100),
        rate_change("fallback_rate", 10, 100, 10, 100),
        oov_check(0.0, 0.5),
        oov_check(0.0, 0.0),
        feedback_check(0.9, 0.1),
        feedback_check(0.9, 0.9),
        latency_check([100] * 10 + [200]),
        latency_check([100] * 10),
    ]
    for check in checks:
        assert check.meaning[0].isupper() and check.meaning.endswith("."), check.meaning
        assert ". " not in check.meaning and check.meaning.count(".") == 1, check.meaning
