"""Capacity planning for the chat service with an M/M/c queueing model.

A load test tells us what one replica can do; production asks how many replicas keep the
p95 latency under the SLO at the expected traffic, and what the autoscaler should be told.
Rules of thumb ("stay under 70 % CPU") ignore that queueing delay grows sharply near
saturation and shrinks as servers are pooled, so the plan here comes from the Erlang C
formula instead, with every modelling assumption spelled out in the returned ``Plan``.

Units: rates are per second and times are in seconds, except where a name ends in ``_ms``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Plan", "erlang_c", "from_curve", "mean_wait", "plan", "wait_quantile"]

# Upper bound on the replica search: far beyond any cluster this toolkit targets, it only
# turns a caller's unit mistake (rps given as rpm, say) into an error instead of a long loop.
_MAX_REPLICAS = 10_000
_P95 = 0.95


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival has to wait in an M/M/c queue (Erlang C).

    ``offered_load`` is a = lambda/mu in Erlangs. Computed through the Erlang B recursion
    B(k) = a*B(k-1) / (k + a*B(k-1)), which stays in [0, 1] and never forms a^c or c!, so
    it is stable for thousands of servers; then C = B / (1 - rho*(1 - B)) with rho = a/c.
    Raises ValueError for a >= c: the queue then grows without bound and C is undefined.
    """
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"servers must be a positive integer, got {servers!r}")
    if not math.isfinite(offered_load) or offered_load < 0:
        raise ValueError(f"offered_load must be a finite number >= 0, got {offered_load!r}")
    if offered_load >= servers:
        raise ValueError(f"unstable queue: offered load {offered_load:g} Erlangs >= {servers} servers")
    if offered_load == 0:
        return 0.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    rho = offered_load / servers
    return blocking / (1.0 - rho * (1.0 - blocking))


def _check_rates(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Validate the rates once for every public entry point; return the offered load."""
    if not math.isfinite(service_rate) or service_rate <= 0:
        raise ValueError(f"service_rate must be a finite number > 0, got {service_rate!r}")
    if not math.isfinite(arrival_rate) or arrival_rate < 0:
        raise ValueError(f"arrival_rate must be a finite number >= 0, got {arrival_rate!r}")
    return arrival_rate / service_rate


def mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time spent queueing before service starts (Wq = C / (c*mu - lambda)), in seconds.

    Service time itself is not included: add 1/service_rate for the mean response time.
    """
    load = _check_rates(servers, arrival_rate, service_rate)
    p_wait = erlang_c(servers, load)
    return p_wait / (servers * service_rate - arrival_rate) if p_wait else 0.0


def _hypoexp_survival(rate_a: float, rate_b: float, t: float) -> float:
    """P(X + Y > t) for independent exponentials, without cancellation when the rates meet.

    The textbook (b*e^-at - a*e^-bt)/(b - a) loses every digit as a -> b; rewritten as
    e^-lo*t * (1 + lo*t * (1 - e^-d*t)/(d*t)) with lo the smaller rate and d the gap, it
    tends smoothly to the Erlang-2 survival e^-mu*t * (1 + mu*t) and cannot overflow.
    """
    lo, hi = min(rate_a, rate_b), max(rate_a, rate_b)
    x = (hi - lo) * t
    ratio = 1.0 if x == 0 else -math.expm1(-x) / x
    return math.exp(-lo * t) * (1.0 + lo * t * ratio)


def _response_quantile(p_wait: float, drain_rate: float, service_rate: float, q: float) -> float:
    """q-quantile of W + S where W is 0 w.p. 1-p_wait, else Exp(drain_rate); S ~ Exp(service_rate).

    The distribution is exact for M/M/c under FCFS; only the inversion is numerical:
    bisection on the closed-form survival function to a relative width of 1e-12.
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    tail = 1.0 - q

    def survival(t: float) -> float:
        queued = _hypoexp_survival(drain_rate, service_rate, t) if p_wait else 0.0
        return (1.0 - p_wait) * math.exp(-service_rate * t) + p_wait * queued

    lo, hi = 0.0, -math.log(tail) / min(drain_rate, service_rate)
    while survival(hi) > tail:  # first guess from the slower rate; double until it brackets
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        if survival(mid) > tail:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def wait_quantile(servers: int, arrival_rate: float, service_rate: float, q: float) -> float:
    """q-quantile of the *response* time (queueing wait + service) in an M/M/c queue, in seconds.

    In M/M/c under FCFS the wait is 0 with probability 1 - C and Exp(c*mu - lambda) otherwise,
    independent of the request's own Exp(mu) service, so the response-time distribution is
    known in closed form. It has no closed-form inverse, so the quantile is found by
    bisection to a relative precision of 1e-12: the approximation is numerical, not a model
    shortcut.
    """
    load = _check_rates(servers, arrival_rate, service_rate)
    p_wait = erlang_c(servers, load)
    return _response_quantile(p_wait, servers * service_rate - arrival_rate, service_rate, q)


@dataclass(frozen=True)
class Plan:
    """A replica count with the numbers that justify it, so a review can check the reasoning."""

    replicas: int
    utilisation: float
    predicted_p95_ms: float
    p_wait: float
    assumptions: list[str]
    headroom: float
    peak_replicas: int  # replicas the same model needs at twice the target, the HPA ceiling

    def hpa(self) -> dict[str, int]:
        """Autoscaler bounds: floor at the plan, ceiling at 2x traffic, CPU target keeps headroom."""
        return {
            "min_replicas": self.replicas,
            "max_replicas": self.peak_replicas,
            "target_cpu_utilization": round(100 * (1 - self.headroom)),
        }


def _positive(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _smallest(
    target_rps: float,
    per_replica_rps: float,
    p95_slo_ms: float,
    service_time_ms: float,
    concurrency: int,
    headroom: float,
    min_replicas: int,
) -> tuple[int, float, float, float]:
    """Search replica counts upward; return (replicas, utilisation, p95_ms, p_wait) of the first fit."""
    server_rate = per_replica_rps / concurrency
    latency_rate = 1000.0 / service_time_ms
    floor_p95_ms = 1000.0 * math.log(1 / (1 - _P95)) / latency_rate
    if floor_p95_ms > p95_slo_ms:
        raise ValueError(
            f"p95 SLO {p95_slo_ms:g} ms is below the p95 of service alone ({floor_p95_ms:.1f} ms "
            f"for a {service_time_ms:g} ms mean): no replica count can meet it"
        )
    # The utilisation bound alone gives a lower bound on the count; start the search there.
    start = max(min_replicas, math.ceil(target_rps / (per_replica_rps * (1 - headroom)) - 1e-9))
    for replicas in range(start, _MAX_REPLICAS + 1):
        servers = replicas * concurrency
        utilisation = target_rps / (replicas * per_replica_rps)
        if utilisation > (1 - headroom) + 1e-12 or utilisation >= 1.0:  # a saturated queue never drains
            continue
        p_wait = erlang_c(servers, target_rps / server_rate)
        drain_rate = servers * server_rate - target_rps
        p95_ms = 1000.0 * _response_quantile(p_wait, drain_rate, latency_rate, _P95)
        if p95_ms <= p95_slo_ms:
            return replicas, utilisation, p95_ms, p_wait
    raise ValueError(f"no plan within {_MAX_REPLICAS} replicas; check the units of the inputs")


def plan(
    target_rps: float,
    per_replica_rps: float,
    p95_slo_ms: float,
    *,
    service_time_ms: float,
    concurrency_per_replica: int = 1,
    headroom: float = 0.3,
    min_replicas: int = 2,
) -> Plan:
    """Smallest replica count whose predicted p95 meets the SLO with utilisation <= 1 - headroom.

    Model: Poisson arrivals at ``target_rps``; all replicas pooled behind the load balancer
    as one M/M/c queue with c = replicas * ``concurrency_per_replica`` servers; each server
    serves at ``per_replica_rps / concurrency_per_replica``, i.e. the measured saturation
    throughput is taken as the service capacity. Queueing (whether and how long a request
    waits) follows from that rate; the request's own service term is exponential with the
    measured low-load mean ``service_time_ms``. When service_time_ms equals
    1000 * concurrency / per_replica_rps this is exactly M/M/c; otherwise the measured latency
    is trusted for the service term and the throughput for capacity.
    """
    for name, value in (
        ("target_rps", target_rps),
        ("per_replica_rps", per_replica_rps),
        ("p95_slo_ms", p95_slo_ms),
        ("service_time_ms", service_time_ms),
    ):
        _positive(name, value)
    if isinstance(concurrency_per_replica, bool) or not isinstance(concurrency_per_replica, int):
        raise ValueError(f"concurrency_per_replica must be an integer, got {concurrency_per_replica!r}")
    if concurrency_per_replica < 1:
        raise ValueError(f"concurrency_per_replica must be >= 1, got {concurrency_per_replica}")
    if not 0 <= headroom < 1:
        raise ValueError(f"headroom must be in [0, 1), got {headroom!r}")
    if isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 1:
        raise ValueError(f"min_replicas must be a positive integer, got {min_replicas!r}")

    args = (per_replica_rps, p95_slo_ms, service_time_ms, concurrency_per_replica, headroom, min_replicas)
    replicas, utilisation, p95_ms, p_wait = _smallest(target_rps, *args)
    peak_replicas = _smallest(2 * target_rps, *args)[0]

    server_rate = per_replica_rps / concurrency_per_replica
    implied = per_replica_rps * service_time_ms / 1000.0  # Little's law: requests in service
    assumptions = [
        "Arrivals are Poisson (independent requests at a steady rate); bursts need more headroom.",
        "Service times are exponential; heavier-tailed latency makes the p95 optimistic.",
        "Replicas are pooled as one M/M/c queue behind the load balancer (least-busy routing);"
        " round-robin routing behaves worse.",
        f"Each replica is {concurrency_per_replica} server(s) at {server_rate:g} req/s"
        " each: the measured saturation throughput is the service capacity.",
        f"The service term has the measured low-load mean of {service_time_ms:g} ms;"
        f" by Little's law that throughput implies {implied:.2f} requests in service per replica.",
        "Requests are served first come, first served, and the traffic is stationary (no warm-up).",
        f"Utilisation is kept at or below {1 - headroom:.0%} to absorb spikes while the autoscaler reacts.",
    ]
    return Plan(
        replicas=replicas,
        utilisation=utilisation,
        predicted_p95_ms=p95_ms,
        p_wait=p_wait,
        assumptions=assumptions,
        headroom=headroom,
        peak_replicas=peak_replicas,
    )


def from_curve(users: Sequence[float], rps: Sequence[float], p95_ms: Sequence[float]) -> tuple[float, float]:
    """Turn a load-test curve into (per_replica_rps, service_time_ms) for ``plan``.

    Saturation throughput is the highest rps observed at any user count (throughput
    plateaus, then often dips, past saturation). The service time uses the p95 at the
    *smallest* user count, where queueing is negligible, converted to the exponential mean
    that ``plan`` expects: p95 = mean * ln(20), so mean = p95 / ln(20) (~ p95 / 3). The curve
    must come from a single replica for the throughput to be per replica.
    """
    if not (len(users) == len(rps) == len(p95_ms)):
        raise ValueError("users, rps and p95_ms must have the same length")
    if not users:
        raise ValueError("the curve is empty")
    points = sorted(zip(users, rps, p95_ms, strict=True))
    for u, r, p in points:
        if not all(math.isfinite(v) for v in (u, r, p)) or u <= 0 or r < 0 or p <= 0:
            raise ValueError(f"bad curve point users={u!r} rps={r!r} p95_ms={p!r}")
    saturation = max(r for _, r, _ in points)
    _positive("maximum rps", saturation)
    low_load_p95 = points[0][2]
    return saturation, low_load_p95 / math.log(1 / (1 - _P95))
