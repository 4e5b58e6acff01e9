"""Checks and helpers of exercises 03 (load and bottleneck), 04 (drift) and 05 (governance)."""

from __future__ import annotations

import contextlib
import os
import re
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botkit.teaching.workshop.checks import CheckResult, _safe, done, is_todo, not_yet

__all__ = [
    "BOTTLENECKS",
    "CpuMeter",
    "check_bottleneck",
    "check_drift_caught",
    "check_promotion_decision",
    "cpu_meter",
    "replay_traffic",
]

BOTTLENECKS = ("cpu", "workers", "batching")


# ----------------------------------------------------------------- exercise 03: load and bottleneck


@dataclass
class CpuMeter:
    """CPU a process tree used between start and stop, and how busy the whole machine was.

    ``cores``: average cores the server kept busy; ``machine_cores``: average cores busy on the
    whole machine (the load generator included: on a laptop, Locust competes for the same cores).
    """

    pid: int
    cpu_s: float = 0.0
    wall_s: float = 0.0
    machine_busy_s: float = 0.0

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def machine_cores(self) -> float:
        return self.machine_busy_s / self.wall_s if self.wall_s > 0 else 0.0


def _machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (idle and I/O wait excluded)."""
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _tree_cpu(pid: int, seen: dict[int, float]) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            seen[p.pid] = max(seen.get(p.pid, 0.0), t.user + t.system)


@contextlib.contextmanager
def cpu_meter(process: Any) -> Iterator[CpuMeter]:
    """Measure the CPU a server (a ``Server``, a Popen or a pid) and its workers use inside the block.

    Samples the process tree every 0.5 s, so workers that come and go are counted too.
    """
    import threading

    pid = getattr(getattr(process, "proc", None), "pid", None) or getattr(process, "pid", None)
    if pid is None and isinstance(process, int):
        pid = process
    if pid is None:
        raise ValueError(f"cpu_meter needs a running server, a process or a pid, got {type(process).__name__}; "
                         "start the server first (inside `with Server(...) as server:`)")
    meter = CpuMeter(int(pid))
    before: dict[int, float] = {}
    _tree_cpu(meter.pid, before)
    after = dict(before)
    busy0 = _machine_busy_s()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            _tree_cpu(meter.pid, after)

    th = threading.Thread(target=sample, daemon=True, name="cpu-meter")
    t0 = time.monotonic()
    th.start()
    try:
        yield meter
    finally:
        stop.set()
        th.join(timeout=2)
        _tree_cpu(meter.pid, after)
        meter.wall_s = time.monotonic() - t0
        meter.cpu_s = sum(after.values()) - sum(before.get(p, 0.0) for p in after)
        meter.machine_busy_s = max(0.0, _machine_busy_s() - busy0)


_SYNONYMS = {
    "cpu": "cpu", "cpus": "cpu", "core": "cpu", "cores": "cpu", "processor": "cpu", "compute": "cpu",
    "workers": "workers", "worker": "workers", "processes": "workers", "process": "workers", "gil": "workers",
    "batching": "batching", "batch": "batching", "batches": "batching", "adaptive batching": "batching",
}
_EVIDENCE = {
    "cpu": ("cpu", "core", "%", "saturat", "busy", "load"),
    "workers": ("worker", "core", "gil", "idle", "process", "parallel", "one at a time"),
    "batching": ("batch", "per request", "per-request", "overhead", "vector", "one at a time", "latency", "call"),
}


@_safe("bottleneck")
def check_bottleneck(answer: Any, because: Any = None, observations: Mapping[str, Any] | None = None) -> CheckResult:
    """Accept any of cpu / workers / batching that comes with a reason consistent with the measurements.

    ``answer`` is the choice (or a dict with ``bottleneck`` and ``because``); ``observations``
    may hold ``cores``, ``workers``, ``batching``, ``server_cores_used`` and ``machine_cores_busy``
    from the load test. "cpu" fits when the server, or the whole machine (the load generator
    competes for the same cores on a laptop), kept most cores busy.
    """
    step = "bottleneck"
    if isinstance(answer, Mapping):
        because = answer.get("because", because)
        answer = answer.get("bottleneck")
    if is_todo(answer):
        return not_yet(step, f"choose the bottleneck: one of {', '.join(repr(b) for b in BOTTLENECKS)}")
    choice = _SYNONYMS.get(str(answer).strip().lower())
    if choice is None:
        return not_yet(step, f"{answer!r} is not one of {', '.join(repr(b) for b in BOTTLENECKS)}")
    if is_todo(because):
        return not_yet(step, f"{choice!r} may well be right: now say why, in a sentence that points at a number "
                             "you measured (cores used, requests/s, latency)")
    reason = str(because).strip()
    low = reason.lower()
    if len(reason.split()) < 6:
        return not_yet(step, "give a full sentence of evidence (at least 6 words): which measurement made you "
                             "choose it?")
    if not (re.search(r"\d", low) or any(k in low for k in _EVIDENCE[choice])):
        return not_yet(step, f"your reason does not point at a measurement: mention the number you looked at "
                             f"(e.g. {', '.join(_EVIDENCE[choice][:3])})")
    obs = dict(observations or {})
    cores = obs.get("cores") or os.cpu_count() or 1
    used, workers, batching = obs.get("server_cores_used"), obs.get("workers"), obs.get("batching")
    machine = obs.get("machine_cores_busy")
    machine_full = isinstance(machine, int | float) and machine >= 0.75 * cores
    if choice == "cpu" and isinstance(used, int | float) and used < 0.75 * cores and not machine_full:
        also = f" (the whole machine {machine:.1f})" if isinstance(machine, int | float) else ""
        return not_yet(step, f"the server kept only {used:.1f} of {cores} cores busy on average{also}, so the "
                             "machine's CPU was not used up: what stopped it from using the rest?")
    if choice == "workers" and isinstance(workers, int) and workers >= cores:
        return not_yet(step, f"the service already ran {workers} workers on {cores} cores: more workers than "
                             "cores only adds switching; look at CPU or batching")
    if choice == "batching" and batching is True:
        return not_yet(step, "batching was already on in this run: look at workers or CPU")
    nxt = {"cpu": "a cheaper model, or more machines behind a load balancer",
           "workers": "restart with workers=2 and compare requests/s",
           "batching": "restart with batching=True and compare requests/s"}[choice]
    return done(step, f"{choice!r}, with a reason that points at the measurements. Prove it: {nxt}")


# ------------------------------------------------------------------------- exercise 04: drift


def replay_traffic(store: Any, model: Any, texts: Sequence[str], *, start: float, spacing_s: float = 0.05,
                   model_version: str = "workshop", latency_ms: float = 5.0) -> tuple[float, float]:
    """Write one chat event per text, as the service would, starting at ``start``; returns ``(since, until)``.

    Faster than a live service and repeatable: the monitor cannot tell the difference, because
    it only reads events. Texts are redacted first, like the service does.
    """
    import uuid

    from botkit.core.redact import redact
    from botkit.serving.events import ChatEvent

    texts = [str(t) for t in texts]
    preds = model.predict(texts) if texts else []
    events = [ChatEvent(ts=start + i * spacing_s, request_id=uuid.uuid4().hex, session_id="workshop",
                        text=redact(t), intent=p.intent, confidence=float(p.confidence), fallback=bool(p.fallback),
                        latency_ms=latency_ms + (zlib.crc32(t.encode()) % 100) / 50, model_version=model_version)
              for i, (t, p) in enumerate(zip(texts, preds, strict=True))]
    store.append_many(events)
    return start, start + max(1, len(texts)) * spacing_s


@_safe("drift")
def check_drift_caught(report: Any, answer: Any = None) -> CheckResult:
    """The monitor must flag the shifted window, and ``answer`` must name a check that really flagged."""
    step = "drift"
    if is_todo(report):
        return not_yet(step, "run the monitor on your shifted window: the same call as for the normal window, "
                             "with the start and end of your window")
    if not hasattr(report, "checks") or not hasattr(report, "alerts"):
        return not_yet(step, f"expected the MonitorReport that monitor.report() returns, got {type(report).__name__}")
    n = (getattr(report, "counts", None) or {}).get("chats", 0)
    flagged = [c.name for c in report.alerts]
    if not flagged:
        small = f" (only {n} chats in the window; send at least 100)" if n < 100 else ""
        return not_yet(step, "no check flagged this window: to the monitor it looks like normal traffic"
                             f"{small}. Make most messages about topics the bot never saw "
                             "(monitor.NEW_TOPIC_REQUESTS) and report on exactly that window")
    if is_todo(answer):
        return not_yet(step, "the monitor raised alerts: now name one check that flagged (lines marked !! in "
                             "report.summary())")
    names = [answer] if isinstance(answer, str) else list(answer)
    known = {c.name: c for c in report.checks}
    for name in names:
        if name not in known:
            return not_yet(step, f"there is no check called {name!r}; the checks are {', '.join(known)}")
        c = known[name]
        if not c.flagged:
            return not_yet(step, f"{name} did not flag: value {c.value:.4g} against threshold {c.threshold:g} "
                                 f"({c.meaning}). Flagged were: {', '.join(flagged)}")
    c = known[names[0]]
    more = f" (and {len(flagged) - 1} more)" if len(flagged) > 1 else ""
    return done(step, f"{', '.join(names)} flagged{more}: {c.name} {c.value:.4g} vs threshold {c.threshold:g}. "
                      f"{c.meaning}")


# -------------------------------------------------------------------- exercise 05: governance


def _call(expected: Any) -> bool | None:
    if isinstance(expected, bool):
        return expected
    text = str(expected).strip().lower()
    if text in ("promote", "promoted", "approve", "approved", "ship", "yes", "accept"):
        return True
    if text in ("reject", "rejected", "refuse", "block", "no", "deny"):
        return False
    return None


@_safe("promotion decision")
def check_promotion_decision(decision: Any, expected: Any) -> CheckResult:
    """Did the policy decide what you called, and do you see which rules decided it?"""
    step = "promotion decision"
    if is_todo(expected):
        return not_yet(step, "write down your call first: my_call = \"promote\" or \"reject\"")
    call = _call(expected)
    if call is None:
        return not_yet(step, f"my_call must be \"promote\" or \"reject\", got {expected!r}")
    if is_todo(decision):
        return not_yet(step, "apply the policy with the governance function that only evaluates (Task 2 names "
                             "it); it needs your candidate's tag, the reviewer and the policy")
    if not hasattr(decision, "approved") or not hasattr(decision, "rules"):
        return not_yet(step, f"expected the Decision that governance.decide() returns, got {type(decision).__name__}")
    failed = [r for r in decision.rules if not r.passed]
    verdict = "APPROVED" if decision.approved else "REJECTED"
    if bool(decision.approved) != call:
        if call and failed:
            if all(r.name == "reviewer" for r in failed):
                return not_yet(step, "the only failed rule is the reviewer: the policy needs a named reviewer "
                                     "(reviewer = \"...\")")
            why = "; ".join(f"{r.name}: {r.detail}" for r in failed)
            return not_yet(step, f"you called promote, the policy says {verdict}: {why}")
        return not_yet(step, f"you called reject, but every rule passed and the policy says {verdict}. Is your "
                             "candidate really weaker than production? Compare their metrics")
    if decision.approved:
        return done(step, f"you called it: {verdict} ({len(decision.rules)} rules passed)")
    why = "; ".join(f"{r.name} ({r.detail})" for r in failed)
    return done(step, f"you called it: {verdict} because {why}")

