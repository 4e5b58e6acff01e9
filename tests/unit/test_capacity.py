"""Capacity planning is checked against values worked out by hand, not against itself."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from botkit.ops.capacity import Plan, erlang_c, from_curve, mean_wait, plan, wait_quantile

LN20 = math.log(20)  # -ln(1 - 0.95): the p95 of Exp(rate) is ln(20)/rate


def _erlang_c_direct(c: int, a: Fraction) -> Fraction:
    """Textbook formula in exact rational arithmetic, independent of the Erlang B recursion."""
    top = a**c / math.factorial(c) * Fraction(c) / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(
    ("servers", "load", "expected"),
    [
        # c=1: C = rho (M/M/1 waits whenever the single server is busy)
        (1, 0.5, 0.5),
        (1, 0.9, 0.9),
        # c=2, a=1: top = a^2/2! * c/(c-a) = 1/2 * 2/1 = 1; sum_{k<2} a^k/k! = 1 + 1 = 2
        #           C = 1 / (2 + 1) = 1/3
        (2, 1.0, 1 / 3),
        # c=3, a=2: top = 2^3/3! * 3/(3-2) = 8/6 * 3 = 4; sum = 1 + 2 + 4/2 = 5
        #           C = 4 / (5 + 4) = 4/9
        (3, 2.0, 4 / 9),
        # c=4, a=3: top = 3^4/4! * 4/(4-3) = 81/24 * 4 = 27/2; sum = 1 + 3 + 9/2 + 27/6 = 13
        #           C = (27/2) / (13 + 27/2) = 27/53
        (4, 3.0, 27 / 53),
    ],
)
def test_erlang_c_matches_hand_computed_values(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(expected, rel=1e-12)


def test_erlang_c_hand_values_also_follow_from_the_erlang_b_route() -> None:
    # c=3, a=2 via Erlang B: B1 = 2/3, B2 = 2*(2/3)/(2 + 4/3) = 2/5, B3 = 2*(2/5)/(3 + 4/5) = 4/19
    # C = B3 / (1 - rho*(1 - B3)) = (4/19) / (1 - (2/3)*(15/19)) = (4/19) / (9/19) = 4/9
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)


def test_erlang_c_agrees_with_exact_rational_formula_for_many_servers() -> None:
    for c, a in [(10, Fraction(7)), (30, Fraction(25)), (60, Fraction(119, 2))]:
        assert erlang_c(c, float(a)) == pytest.approx(float(_erlang_c_direct(c, a)), rel=1e-10)


def test_erlang_c_is_stable_where_factorials_overflow() -> None:
    # 2000! overflows a float; Halfin-Whitt puts C near 0.013 for a=1900, c=2000.
    value = erlang_c(2000, 1900.0)
    assert 0.005 < value < 0.03


def test_erlang_c_is_zero_without_load() -> None:
    assert erlang_c(3, 0.0) == 0.0


@pytest.mark.parametrize(("servers", "load"), [(1, 1.0), (2, 2.0), (3, 5.0)])
def test_erlang_c_rejects_unstable_load(servers: int, load: float) -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(servers, load)


@pytest.mark.parametrize(("servers", "load"), [(0, 0.5), (-1, 0.5), (2, -0.1), (2, math.nan), (True, 0.1)])
def test_erlang_c_rejects_bad_input(servers: int, load: float) -> None:
    with pytest.raises(ValueError):
        erlang_c(servers, load)


def test_mean_wait_matches_hand_computed_values() -> None:
    # Wq = C / (c*mu - lambda). c=2, lambda=1, mu=1: (1/3) / (2 - 1) = 1/3 s
    assert mean_wait(2, 1.0, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    # M/M/1, lambda=1, mu=2: Wq = rho / (mu - lambda) = 0.5 / 1 = 0.5 s
    assert mean_wait(1, 1.0, 2.0) == pytest.approx(0.5, rel=1e-12)


def test_mean_wait_rejects_unstable_rates() -> None:
    with pytest.raises(ValueError):
        mean_wait(2, 4.0, 2.0)


def test_response_quantile_of_mm1_is_exponential_with_rate_mu_minus_lambda() -> None:
    # M/M/1 response time is exactly Exp(mu - lambda): p95 = ln(20) / (2 - 1) = 2.9957 s
    assert wait_quantile(1, 1.0, 2.0, 0.95) == pytest.approx(LN20, rel=1e-9)
    assert wait_quantile(1, 3.0, 4.0, 0.5) == pytest.approx(math.log(2), rel=1e-9)


def test_response_quantile_when_drain_rate_equals_service_rate() -> None:
    # c=2, lambda=1, mu=1: drain rate c*mu - lambda = 1 = mu, the case where the textbook
    # hypoexponential formula divides by zero. Survival is then
    # (1 - C) e^-t + C e^-t (1 + t) = e^-t (1 + t/3) with C = 1/3.
    t = wait_quantile(2, 1.0, 1.0, 0.95)
    assert math.exp(-t) * (1 + t / 3) == pytest.approx(0.05, rel=1e-9)


def test_response_quantile_tends_to_service_quantile_without_queueing() -> None:
    # Almost no load on 8 servers: nobody waits, p95 is the Exp(mu) p95 = ln(20)/mu.
    assert wait_quantile(8, 1e-6, 10.0, 0.95) == pytest.approx(LN20 / 10.0, rel=1e-6)


def test_response_quantile_grows_with_q_and_load() -> None:
    by_q = [wait_quantile(2, 1.0, 1.0, q) for q in (0.5, 0.95, 0.99)]
    by_load = [wait_quantile(4, rate, 1.0, 0.95) for rate in (1.0, 3.0, 3.9)]
    assert by_q == sorted(by_q) and len(set(by_q)) == 3
    assert by_load == sorted(by_load) and len(set(by_load)) == 3


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 1.5])
def test_response_quantile_rejects_q_outside_open_unit_interval(q: float) -> None:
    with pytest.raises(ValueError):
        wait_quantile(2, 1.0, 1.0, q)


def test_plan_matches_hand_computed_example() -> None:
    # 100 rps, 50 rps per replica, 20 ms service (= 1/50 s, so exactly M/M/c), 30 % headroom:
    # utilisation forces replicas >= 100 / (50 * 0.7) = 2.86 -> 3. With c=3, a=2: C = 4/9,
    # drain rate 3*50 - 100 = 50 = mu, p95 solves e^-x (1 + 4x/9) = 0.05 with x = 50 t:
    # x ~ 4.0207 -> t ~ 80.4 ms, inside a 100 ms SLO.
    result = plan(100, 50, 100, service_time_ms=20)
    assert result.replicas == 3
    assert result.utilisation == pytest.approx(2 / 3)
    assert result.p_wait == pytest.approx(4 / 9)
    x = 50 * result.predicted_p95_ms / 1000
    assert math.exp(-x) * (1 + 4 * x / 9) == pytest.approx(0.05, rel=1e-9)
    assert result.predicted_p95_ms == pytest.approx(80.4, abs=0.1)


def test_plan_adds_replicas_when_slo_is_tighter_than_headroom_needs() -> None:
    # Same traffic, 80 ms SLO: 3 replicas give 80.4 ms, so one more is needed.
    assert plan(100, 50, 80, service_time_ms=20).replicas == 4


def test_plan_prediction_equals_mmc_response_quantile_when_inputs_agree() -> None:
    result = plan(450, 40, 200, service_time_ms=50, concurrency_per_replica=2, min_replicas=1)
    servers = result.replicas * 2
    assert result.predicted_p95_ms == pytest.approx(1000 * wait_quantile(servers, 450, 20, 0.95), rel=1e-9)
    assert result.p_wait == pytest.approx(erlang_c(servers, 450 / 20))


def test_plan_grows_with_target() -> None:
    counts = [plan(rps, 50, 150, service_time_ms=20).replicas for rps in (50, 200, 800, 3200)]
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]


def test_plan_respects_headroom_and_slo_and_is_minimal() -> None:
    target, per_replica, slo = 700.0, 60.0, 120.0
    for headroom in (0.0, 0.2, 0.5):
        result = plan(target, per_replica, slo, service_time_ms=1000 / per_replica, headroom=headroom, min_replicas=1)
        assert result.utilisation <= 1 - headroom + 1e-12
        assert result.predicted_p95_ms <= slo
        # one replica fewer must break the headroom or the SLO
        fewer = result.replicas - 1
        too_busy = target / (fewer * per_replica) > 1 - headroom
        assert too_busy or 1000 * wait_quantile(fewer, target, per_replica, 0.95) > slo


def test_plan_more_headroom_means_more_replicas() -> None:
    low = plan(1000, 50, 500, service_time_ms=20, headroom=0.1).replicas
    high = plan(1000, 50, 500, service_time_ms=20, headroom=0.5).replicas
    assert high > low
    assert high >= math.ceil(1000 / (50 * 0.5))


def test_plan_never_goes_below_min_replicas() -> None:
    assert plan(1, 50, 500, service_time_ms=20, min_replicas=3).replicas == 3


def test_plan_rejects_slo_below_the_service_time_itself() -> None:
    # p95 of Exp(mean 100 ms) is ~300 ms; no number of replicas removes service time.
    with pytest.raises(ValueError, match="no replica count"):
        plan(10, 50, 200, service_time_ms=100)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_rps": 0},
        {"per_replica_rps": -1},
        {"headroom": 1.0},
        {"concurrency_per_replica": 0},
        {"min_replicas": 0},
        {"service_time_ms": math.inf},
    ],
)
def test_plan_rejects_bad_input(kwargs: dict[str, float]) -> None:
    args = {"target_rps": 100, "per_replica_rps": 50, "p95_slo_ms": 100, "service_time_ms": 20} | kwargs
    with pytest.raises(ValueError):
        plan(**args)


def test_plan_lists_its_assumptions_one_line_each() -> None:
    result = plan(100, 50, 100, service_time_ms=20)
    assert isinstance(result, Plan)
    assert result.assumptions
    assert all(line and "\n" not in line for line in result.assumptions)
    assert any("Poisson" in line for line in result.assumptions)


def test_hpa_settings_are_consistent_with_plan() -> None:
    result = plan(100, 50, 100, service_time_ms=20, headroom=0.3)
    hpa = result.hpa()
    assert hpa == {
        "min_replicas": result.replicas,
        "max_replicas": plan(200, 50, 100, service_time_ms=20, headroom=0.3).replicas,
        "target_cpu_utilization": 70,
    }
    assert hpa["min_replicas"] <= hpa["max_replicas"]


def test_plan_is_frozen() -> None:
    result = plan(100, 50, 100, service_time_ms=20)
    with pytest.raises(AttributeError):
        result.replicas = 1  # type: ignore[misc]


def test_from_curve_takes_peak_throughput_and_low_load_latency() -> None:
    # Unsorted on purpose; saturation at 80 rps, throughput dips past it.
    per_replica, service_ms = from_curve([10, 1, 20, 5], [80, 10, 78, 45], [60, 30, 200, 35])
    assert per_replica == 80
    # p95 at 1 user = 30 ms; exponential mean = p95 / ln(20) = 10.01 ms
    assert service_ms == pytest.approx(30 / LN20)


def test_from_curve_feeds_plan() -> None:
    per_replica, service_ms = from_curve([1, 4, 16], [20, 70, 90], [25, 40, 180])
    assert plan(200, per_replica, 150, service_time_ms=service_ms).replicas >= math.ceil(200 / (90 * 0.7))


@pytest.mark.parametrize(
    ("users", "rps", "p95"),
    [([], [], []), ([1, 2], [10], [5, 6]), ([1], [0], [5]), ([0], [10], [5]), ([1], [10], [-5])],
)
def test_from_curve_rejects_bad_curves(users: list[float], rps: list[float], p95: list[float]) -> None:
    with pytest.raises(ValueError):
        from_curve(users, rps, p95)


def test_zero_headroom_at_exact_capacity_takes_one_more_replica_instead_of_failing():
    # 1000 req/s over 2 x 500 is utilisation 1.0: an M/M/c queue at rho = 1 never drains.
    p = plan(1000, 500, 1000, service_time_ms=2, headroom=0.0, min_replicas=1)
    assert p.replicas == 3
    assert p.utilisation < 1.0
