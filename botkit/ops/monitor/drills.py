"""Fault drills: scripted traffic against a LIVE service (normal, a topic shift, a latency fault).

:func:`simulate` drives a service on loopback through the three phases and returns their
boundaries, so that each phase can be judged on its own window
(:func:`botkit.ops.monitor.phase_report`). :func:`inject_latency` is the one place the fault is
switched on, for real: a delay header the service honours with fault injection on, or a
surge of closed-loop clients.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from botkit.core.data import OOS, Dataset

__all__ = ["DELAY_HEADER", "NEW_TOPIC_REQUESTS", "FaultInjection", "Phase", "SimulationResult", "inject_latency",
           "simulate"]

DELAY_HEADER = "X-Botkit-Delay-Ms"  # honoured by the service only with fault injection on (Settings)
_PHASES = ("normal", "shift", "fault")

# Requests about topics the shop bot was never trained on: new products and programmes
# (subscription boxes, a marketplace, crypto payments, rentals...). Used by simulate() for the
# topic shift; several of them land on real intents with high confidence, as real drift does.
NEW_TOPIC_REQUESTS: tuple[str, ...] = (
    "how do I pause my monthly subscription box",
    "can I skip next month's subscription box delivery",
    "what snacks come in the premium subscription box",
    "upgrade my subscription box to the deluxe tier",
    "cancel the subscription box auto-renewal before it bills",
    "can I gift a three-month subscription box to my sister",
    "does the pet food subscription adjust portions for puppies",
    "do you accept bitcoin for checkout",
    "can I pay with ethereum or another cryptocurrency",
    "my crypto wallet payment is stuck pending on the blockchain",
    "which stablecoins does your crypto gateway support",
    "refund my purchase back to my crypto wallet address",
    "what are the tax implications of paying in dogecoin",
    "how do I become a marketplace seller on your platform",
    "what commission do marketplace sellers pay per listing",
    "when are seller payouts deposited for marketplace vendors",
    "a third-party seller shipped me a counterfeit sneaker",
    "how do I list my handmade candles as a marketplace vendor",
    "can sellers offer wholesale pricing through the marketplace",
    "can vendors integrate their Shopify inventory via your API",
    "do marketplace listings support pre-orders for limited sneakers",
    "my dropshipping supplier's parcels never reach customers",
    "how many loyalty tokens do I earn per purchase",
    "can I redeem my NFT membership pass for early access drops",
    "is the livestream shopping event tonight still on",
    "book a slot for the virtual try-on with augmented reality",
    "does the furniture rental program include free pickup",
    "how much trade-in credit for my old smartphone",
    "sign me up for the carbon-neutral shipping offset",
    "what perks does the referral ambassador programme unlock",
    "can my company open a procurement business account with net-30 invoicing",
    "is there an affiliate dashboard for influencers",
    "how do I sync my smart fridge to auto-reorder groceries",
    "do you offer same-hour drone delivery in my neighbourhood",
    "will the metaverse storefront have exclusive avatars",
    "set up a recurring grocery autoship every fortnight",
    "can I split payments with friends using group checkout",
    "is buy-now-pay-later financing available with zero interest",
    "what is the resale value if I consign my designer handbag",
    "let me bid in the clearance auction for refurbished laptops",
    "how do I claim the cashback from the influencer promo stream",
    "schedule a personal stylist video consultation",
)


@dataclass
class Phase:
    name: str
    start: float
    end: float = math.nan
    sent: int = 0
    failed: int = 0
    feedback_sent: int = 0
    feedback_failed: int = 0
    extra_answered: int = 0  # chats answered besides the scripted ones (fault probe, surge clients)

    @property
    def answered(self) -> int:
        """Chat messages the service answered with 200 in this phase: each must be one chat event."""
        return self.sent - self.failed + self.extra_answered


@dataclass
class SimulationResult:
    url: str
    seed: int
    rps: float
    phases: dict[str, Phase]
    fault_mode: str
    fault_detail: dict[str, Any]

    @property
    def sent(self) -> int:
        return sum(p.sent for p in self.phases.values())

    @property
    def failed(self) -> int:
        return sum(p.failed for p in self.phases.values())

    def windows(self) -> dict[str, tuple[float, float]]:
        return {n: (p.start, p.end) for n, p in self.phases.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "seed": self.seed, "rps": self.rps, "fault_mode": self.fault_mode,
                "fault_detail": self.fault_detail,
                "phases": {n: {k: getattr(p, k) for k in ("start", "end", "sent", "failed", "feedback_sent",
                                                          "feedback_failed", "answered")}
                           for n, p in self.phases.items()}}


@dataclass
class FaultInjection:
    """A running latency fault: ``headers`` go on every request of the fault phase."""

    mode: str
    headers: dict[str, str]
    detail: dict[str, Any]
    _stop: Callable[[], None] | None = None

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


class _Surge:
    """Closed-loop clients with normal traffic, added until the service's own latency reaches the target."""

    def __init__(self, url: str, texts: Sequence[str], target_ms: float, max_clients: int, timeout_s: float,
                 seed: int, step: int = 8):
        self.url, self.texts, self.target_ms = url, list(texts), target_ms
        self.max_clients, self.timeout_s, self.step, self.seed = max_clients, timeout_s, step, seed
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.latencies: list[float] = []
        self.sent = self.failed = 0
        self.lock = threading.Lock()
        self.controller = threading.Thread(target=self._control, name="surge-control", daemon=True)

    def start(self) -> _Surge:
        self.controller.start()
        return self

    def _add(self, n: int) -> None:
        for _ in range(n):
            th = threading.Thread(target=self._client, args=(len(self.threads),), daemon=True,
                                  name=f"surge-{len(self.threads)}")
            self.threads.append(th)
            th.start()

    def _control(self) -> None:
        self._add(self.step)
        while not self.stop_event.wait(0.5):
            with self.lock:
                recent = self.latencies[-60:]
            if len(self.threads) < self.max_clients and (not recent or float(np.median(recent)) < self.target_ms):
                self._add(min(self.step, self.max_clients - len(self.threads)))

    def _client(self, k: int) -> None:
        import httpx

        rng = random.Random(self.seed * 1000 + k)
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            while not self.stop_event.is_set():
                try:
                    r = client.post("/chat", json={"message": rng.choice(self.texts), "session_id": "sim-surge"})
                    ok = r.status_code == 200
                    lat = r.json()["latency_ms"] if ok else None
                except Exception:
                    ok, lat = False, None
                with self.lock:
                    self.sent += 1
                    self.failed += not ok
                    if lat is not None:
                        self.latencies.append(lat)

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.controller.join(timeout=5)
        for th in self.threads:
            th.join(timeout=self.timeout_s + 1)
        lat = self.latencies
        return {"clients": len(self.threads), "background_sent": self.sent, "background_failed": self.failed,
                "background_p50_ms": float(np.median(lat)) if lat else None,
                "background_p95_ms": float(np.percentile(lat, 95)) if lat else None}


def _probe_delay_header(url: str, probe_ms: float, timeout_s: float) -> tuple[bool, bool]:
    """(answered, honoured): does the service sleep for the delay header? Only with BOTKIT_FAULT_INJECTION=true."""
    import httpx

    try:
        r = httpx.post(f"{url}/chat", json={"message": "where is my order", "session_id": "sim-probe"},
                       headers={DELAY_HEADER: f"{probe_ms:g}"}, timeout=timeout_s + probe_ms / 1000)
    except Exception:
        return False, False
    ok = r.status_code == 200
    return ok, ok and r.json()["latency_ms"] >= 0.8 * probe_ms


def inject_latency(url: str, latency_ms: float, *, mode: str = "auto", texts: Sequence[str] = (),
                   max_clients: int = 48, timeout_s: float = 10.0, seed: int = 0) -> FaultInjection:
    """Make the live service slow, for real: the one place simulate()'s fault is switched on.

    ``mode="header"``: every request of the fault phase carries ``X-Botkit-Delay-Ms``, and a
    service started with ``BOTKIT_FAULT_INJECTION=true`` sleeps that long inside the request
    (counted in ``latency_ms``, the events and BentoML's duration histogram). Precise, costs
    nothing, leaves traffic volume and mix untouched: a slow dependency. Needs the service's
    fault-injection switch (``Chat._injected_delay``); a service without it ignores the header.

    ``mode="surge"``: closed-loop clients sending normal traffic are added (8 at a time, up to
    ``max_clients``) until the median in-service latency reaches ``latency_ms``: a real
    traffic surge that saturates the workers, so requests queue inside the service's event
    loop and micro-batcher. Works on any service; the fault window then also holds the
    surge's extra messages (same mix as normal traffic).

    ``mode="auto"``: header when the service honours it (one probe request), else surge.
    """
    if mode not in ("auto", "header", "surge"):
        raise ValueError(f"mode must be 'auto', 'header' or 'surge', got {mode!r}")
    probe: dict[str, Any] = {}
    if mode == "auto":
        answered, honoured = _probe_delay_header(url, max(100.0, latency_ms), timeout_s)
        mode, probe = ("header" if honoured else "surge"), {"probe_answered": int(answered)}
    if mode == "header":
        return FaultInjection("header", {DELAY_HEADER: f"{latency_ms:g}"}, {"delay_ms": latency_ms, **probe})
    if not texts:
        raise ValueError("surge mode needs texts to send")
    surge = _Surge(url, texts, latency_ms, max_clients, timeout_s, seed).start()
    fault = FaultInjection("surge", {}, {"target_ms": latency_ms, **probe})
    fault._stop = lambda: fault.detail.update(surge.stop())
    return fault


@dataclass(frozen=True)
class _Message:
    text: str
    label: str | None  # None: a request no intent covers (new topic)
    vote: bool
    noise: float


def _plan(rng: random.Random, n: int, in_scope: Sequence[tuple[str, str]], oos: Sequence[str], oos_share: float,
          new_share: float, feedback_rate: float) -> list[_Message]:
    out = []
    for _ in range(n):
        u = rng.random()
        if u < new_share:
            text, label = rng.choice(NEW_TOPIC_REQUESTS), None
        elif u < new_share + (1 - new_share) * oos_share:
            text, label = rng.choice(oos), OOS
        else:
            text, label = rng.choice(in_scope)
        out.append(_Message(text, label, rng.random() < feedback_rate, rng.random()))
    return out


def _rating(m: _Message, answer: dict) -> str:
    """A simulated user: up for a right answer (5 % noise), mostly down for a request nobody can answer."""
    if m.label is None:
        return "down" if m.noise < 0.85 else "up"
    right = answer["fallback"] if m.label == OOS else answer["intent"] == m.label
    return ("up" if right else "down") if m.noise >= 0.05 else ("down" if right else "up")


@contextlib.contextmanager
def _progress_printer(enabled: bool | Callable[[str], None], state: dict) -> Iterator[None]:
    if not enabled:
        yield
        return
    say = enabled if callable(enabled) else (lambda s: print(s, file=sys.stderr, flush=True))
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(2.0):
            say(f"  [{state['phase']}] {state['done']}/{state['n']} sent, {state['failed']} failed"
                + (f", {state['extra']}" if state.get("extra") else ""))

    th = threading.Thread(target=loop, daemon=True, name="sim-progress")
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=3)


def simulate(url: str, *, normal_s: float = 60.0, shift_s: float = 40.0, fault_s: float = 30.0, rps: float = 20.0,
             seed: int = 42, fault_latency_ms: float = 250.0, fault_mode: str = "auto", shift_share: float = 0.7,
             feedback_rate: float = 0.3, dataset: Dataset | None = None, max_surge_clients: int = 48,
             timeout_s: float = 10.0, progress: bool | Callable[[str], None] = True) -> SimulationResult:
    """Drive a live service through three scripted phases and record when each began and ended.

    * normal: test-split utterances, in-scope with the validation split's share of
      out-of-scope lines;
    * shift: ``shift_share`` of requests about topics the bot never saw
      (:data:`NEW_TOPIC_REQUESTS`); of the rest, two thirds out-of-scope and one third
      in-scope test utterances;
    * fault: normal traffic while :func:`inject_latency` makes the service slow.

    Each phase sends exactly ``round(rps * seconds)`` chat messages on an open-loop schedule
    (late requests are sent at once, so a slow service cannot shrink the sample), and a
    ``feedback_rate`` share gets a vote from a simulated user. A phase ends when its last
    answer (and vote) is back, so every event of a phase lies inside ``[start, end)``. The
    message plan is drawn from ``seed`` up front: the same seed sends the same messages.
    """
    from botkit.core.data import load

    if rps <= 0:
        raise ValueError(f"rps must be > 0, got {rps!r}")
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to drill {url}: simulate() drives services on loopback only")
    durations = {"normal": normal_s, "shift": shift_s, "fault": fault_s}
    plans, surge_texts = _plans(dataset or load(), durations, rps, seed, shift_share, feedback_rate)
    driver = _Driver(url, timeout_s, progress)
    driver.say(f"simulating against {url}: normal {normal_s:g} s, shift {shift_s:g} s, fault {fault_s:g} s "
               f"at {rps:g} rps")
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="sim") as pool, \
            _progress_printer(progress, driver.state):
        try:
            for name in _PHASES:
                start_fault = None
                if name == "fault":
                    def start_fault() -> FaultInjection:
                        return inject_latency(url, fault_latency_ms, mode=fault_mode, texts=surge_texts,
                                              max_clients=max_surge_clients, timeout_s=timeout_s, seed=seed)
                driver.run_phase(pool, name, plans[name], durations[name], rps, start_fault)
        finally:
            if driver.fault is not None:
                driver.fault.stop()
            driver.close()
    fault = driver.fault
    return SimulationResult(url, seed, rps, driver.phases, fault.mode if fault else "none",
                            dict(fault.detail) if fault else {})


def _plans(ds: Dataset, durations: dict[str, float], rps: float, seed: int, shift_share: float,
           feedback_rate: float) -> tuple[dict[str, list[_Message]], list[str]]:
    """Each phase's messages, drawn from ``seed`` up front, and the texts a surge sends."""
    in_scope = [(t, y) for t, y in ds.test if y != OOS]
    oos = [t for t, y in ds.test if y == OOS] or [t for t, y in ds.train if y == OOS]
    oos_share = sum(y == OOS for _, y in ds.val) / max(1, len(ds.val))
    rng = random.Random(seed)
    plans = {
        "normal": _plan(rng, round(rps * durations["normal"]), in_scope, oos, oos_share, 0.0, feedback_rate),
        "shift": _plan(rng, round(rps * durations["shift"]), in_scope, oos, 2 / 3, shift_share, feedback_rate),
        "fault": _plan(rng, round(rps * durations["fault"]), in_scope, oos, oos_share, 0.0, feedback_rate),
    }
    # a surge sends normal traffic too: the same mix, so that only the load changes
    surge = [m.text for m in _plan(random.Random(seed + 1), 2000, in_scope, oos, oos_share, 0.0, 0.0)]
    return plans, surge


class _Driver:
    """Sends one phase's messages on an open-loop schedule and counts what came back (one client per thread)."""

    def __init__(self, url: str, timeout_s: float, progress: bool | Callable[[str], None]):
        self.url, self.timeout_s = url, timeout_s
        self.local = threading.local()
        self.clients: list[Any] = []
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"phase": "", "done": 0, "n": 0, "failed": 0, "extra": ""}
        self.phases: dict[str, Phase] = {}
        self.fault: FaultInjection | None = None  # set as soon as a fault is switched on, so it is always stopped
        self.say: Callable[[str], None] = (
            (progress if callable(progress) else (lambda m: print(m, file=sys.stderr, flush=True)))
            if progress else (lambda m: None))

    def client(self) -> Any:
        import httpx

        if not hasattr(self.local, "c"):
            self.local.c = httpx.Client(base_url=self.url, timeout=self.timeout_s)
            with self.lock:
                self.clients.append(self.local.c)
        return self.local.c

    def one(self, phase: Phase, m: _Message, headers: dict[str, str]) -> None:
        ok, answer = False, {}
        try:
            # One simulated user per message (about a thousand per phase): the service limits feedback
            # per session, as it should for one real user, and a drill is many users.
            session = f"sim-{phase.name}-{int(m.noise * 1000)}"
            r = self.client().post("/chat", json={"message": m.text, "session_id": session}, headers=headers)
            ok = r.status_code == 200
            answer = r.json() if ok else {}
        except Exception:
            ok = False
        fb_ok = None
        if ok and m.vote:
            try:
                fr = self.client().post("/feedback", json={"request_id": answer["request_id"],
                                                           "rating": _rating(m, answer)})
                fb_ok = fr.status_code == 200
            except Exception:
                fb_ok = False
        with self.lock:
            phase.sent += 1
            phase.failed += not ok
            if fb_ok is not None:
                phase.feedback_sent += 1
                phase.feedback_failed += not fb_ok
            self.state["done"] += 1
            self.state["failed"] += not ok

    def run_phase(self, pool: ThreadPoolExecutor, name: str, plan: list[_Message], duration_s: float, rps: float,
                  start_fault: Callable[[], FaultInjection] | None = None) -> None:
        """One phase; ``start_fault`` switches the fault on once the phase has begun (its probe counts in it)."""
        phase = self.phases[name] = Phase(name, time.time())
        self.state.update(phase=name, done=0, n=len(plan), failed=0, extra="")
        fault = start_fault() if start_fault is not None else None
        headers: dict[str, str] = {}
        if fault is not None:
            self.fault, headers = fault, fault.headers
            self.state["extra"] = f"fault by {fault.mode}"
        t0 = time.monotonic()
        futures = []
        for i, m in enumerate(plan):
            delay = t0 + i / rps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(self.one, phase, m, headers))
        rest = t0 + duration_s - time.monotonic()  # the phase lasts its full length even if sent early
        if rest > 0:
            time.sleep(rest)
        for f in futures:
            f.result()
        if fault is not None:
            fault.stop()
            phase.extra_answered = fault.detail.get("probe_answered", 0) + (
                fault.detail.get("background_sent", 0) - fault.detail.get("background_failed", 0))
        phase.end = time.time()
        self.say(f"  [{name}] done: {phase.sent} sent, {phase.failed} failed, {phase.feedback_sent} votes, "
                 f"{phase.end - phase.start:.1f} s")

    def close(self) -> None:
        for c in self.clients:
            c.close()
