"""Load shapes for loadtests/locustfile.py: step ramp, spike and soak, chosen by name.

Locust runs the *first* ``LoadTestShape`` subclass it finds in a locustfile's namespace, and
its metaclass marks every subclass concrete unless the class says ``abstract = True``. So
every class here is explicitly abstract and the locustfile imports this *module*, never the
classes: nothing is picked up by accident, and ``make(name, ...)`` builds the one asked for
(``--shape step|spike|soak`` or ``LOADTEST_SHAPE``) in the locustfile's ``init`` hook.

Every shape is bounded: it ends after ``duration_s`` (Locust then stops the test), and a
duration above ``LOADTEST_MAX_DURATION_S`` (default 4 h) is refused rather than run.
"""

from __future__ import annotations

import math
import os

from locust import LoadTestShape

__all__ = ["MAX_DURATION_S", "SHAPES", "Soak", "Spike", "StepRamp", "make"]

MAX_DURATION_S = float(os.environ.get("LOADTEST_MAX_DURATION_S", 4 * 3600))


class _Bounded(LoadTestShape):
    """Peak ``users`` for at most ``duration_s`` seconds; subclasses say how to get there."""

    abstract = True
    use_common_options = True  # -u / -t / -r feed the shape, so Locust does not warn they are ignored
    default_duration_s: float = 60.0

    def __init__(self, users: int = 10, duration_s: float | None = None, spawn_rate: float | None = None):
        super().__init__()
        duration_s = float(duration_s or self.default_duration_s)
        if users < 1:
            raise ValueError(f"{type(self).__name__}: users must be >= 1, got {users}")
        if not 0 < duration_s <= MAX_DURATION_S:
            raise ValueError(f"{type(self).__name__}: duration {duration_s:g} s is outside (0, {MAX_DURATION_S:g}] s; "
                             "raise LOADTEST_MAX_DURATION_S for a longer run")
        self.users, self.duration_s, self.spawn_rate = int(users), duration_s, spawn_rate

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        return None if t >= self.duration_s else self.at(t)

    def at(self, t: float) -> tuple[int, float]:
        """(users, spawn rate) ``t`` seconds into the run."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{type(self).__name__}: peak {self.users} users for {self.duration_s:g} s"


class StepRamp(_Bounded):
    """Capacity search: ``steps`` equal plateaus up to the peak, to see where latency bends."""

    abstract = True

    def __init__(self, users: int = 10, duration_s: float | None = None, spawn_rate: float | None = None,
                 steps: int = 4):
        super().__init__(users, duration_s, spawn_rate)
        self.steps = max(1, min(int(steps), self.users))

    def at(self, t: float) -> tuple[int, float]:
        step = min(int(t / (self.duration_s / self.steps)), self.steps - 1)
        return math.ceil(self.users * (step + 1) / self.steps), self.spawn_rate or self.users


class Spike(_Bounded):
    """Baseline, a sudden burst to the peak, back to baseline: does the service recover?"""

    abstract = True
    baseline_share = 0.2  # of the peak
    phases = (0.3, 0.6)  # the burst runs from 30% to 60% of the duration

    def at(self, t: float) -> tuple[int, float]:
        base = max(1, round(self.users * self.baseline_share))
        start, end = (p * self.duration_s for p in self.phases)
        rate = self.spawn_rate or max(self.users, 1)  # a spike arrives within about a second
        return (self.users if start <= t < end else base), rate


class Soak(_Bounded):
    """Ramp up, then hold the peak for long: leaks, queue growth, slow drift."""

    abstract = True
    default_duration_s = 600.0

    def at(self, t: float) -> tuple[int, float]:
        ramp_s = min(60.0, 0.1 * self.duration_s)
        return self.users, self.spawn_rate or max(self.users / max(ramp_s, 1.0), 1.0)


SHAPES: dict[str, type[_Bounded]] = {"step": StepRamp, "spike": Spike, "soak": Soak}


def make(name: str, users: int | None = None, duration_s: float | None = None,
         spawn_rate: float | None = None) -> _Bounded:
    """Build the shape called ``name``; ``None`` arguments take the shape's defaults."""
    try:
        cls = SHAPES[name]
    except KeyError:
        raise ValueError(f"unknown shape {name!r}: expected one of {', '.join(SHAPES)}") from None
    return cls(users or 10, duration_s, spawn_rate)
