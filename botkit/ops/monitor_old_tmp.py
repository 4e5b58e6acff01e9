"""Watch the live bot: drift and latency reports from the event log, gauges for Prometheus, fault drills.

What it answers, for any ``[since, until)`` window of the event log (``botkit.serving.events``):

* is the traffic still the traffic the model was built for? The window is compared with a
  *reference*: by default the model's behaviour on its own validation split
  (:func:`reference_from_training`), or an earlier window of events
  (:func:`reference_from_events`, e.g. the first week after a release). Every statistic comes
  from :mod:`botkit.core.drift`: intent mix (chi-square, Jensen-Shannon, PSI), confidence (KS),
  fallback rate, out-of-vocabulary rate, feedback score;
* was any bucket of time slow? per-bucket p95 latency against its own trailing history
  (robust z-score, :func:`botkit.core.drift.latency_anomalies`); buckets are a minute in
  production and configurable (``bucket_s``) because drills and tests are short.

:func:`report` writes ``report.json``, ``report.md``, ``report.html`` (self-contained, the
dashboard embedded) and ``dashboard.png`` to ``<reports_dir>/monitor/<timestamp>[-label]/``.

Two decisions a reader of the checks should know about, both made here and not in drift.py:

1. **Effect sizes are judged against their own sampling noise.** The Jensen-Shannon distance
   and the PSI of two samples that come from the *same* distribution are not zero: over ``k``
   intents, with ``n_ref`` and ``n_cur`` messages, they are about chi-square(k-1)-sized,
   ``JS ≈ sqrt(X / (8 ln 2) * (1/n_ref + 1/n_cur))`` and ``PSI ≈ X * (1/n_ref + 1/n_cur)``.
   With the 420-message validation split and 31 labels, sampling alone puts the JS distance
   above drift.py's 0.1 for almost any current window size (measured on normal traffic:
   0.15-0.21 at 160 messages, 0.09-0.10 at 1,200). So a JS/PSI value over its threshold
   counts as an alert only when it also clears the 99th percentile of that no-drift noise,
   bootstrapped at the two windows' sizes (:func:`_noise_floor`); otherwise the check is
   shown, not flagged, with a sentence saying the window is too small to judge it. The
   chi-square p-value, which accounts for sample size by construction, still speaks for small
   windows.
2. **Latency is compared with its own past, not with the reference.** A report on a short
   window looks back ``latency_history`` buckets before ``since`` for the trailing history the
   robust z-score needs (at least 5 buckets), and counts anomalies only inside the window.

Known over-eager checks, measured with the bundled bot and left to drift.py: the intent
chi-square is a goodness-of-fit test that treats the reference mix as exact, so normal test
traffic is flagged in 5.5 % of 160-message windows and 44 % of 900-message ones (a two-sample
test, ``scipy.stats.chi2_contingency``, flagged 0 % of both and still 100 % of shifted windows);
the confidence KS test sees that the validation split, on which the softmax temperature was
fitted, is easier than held-out data (D = 0.074: 5.5 % of 160-message and 15 % of 900-message
windows flagged); the latency MAD floor (1 % of the median) lets a 3 ms wobble on 11 ms count
as a spike when the history is short.

Gauges: :func:`export_gauges` turns checks into a prometheus_client registry with
``botkit_drift_score{check}`` and ``botkit_drift_flagged{check}`` (0/1) plus
``botkit_drift_report_timestamp_seconds``. Prometheus gets them either by scraping
:func:`serve_gauges` (``python -m botkit.ops.monitor report --gauges-port 9321``, loopback only;
``deploy/prometheus/prometheus.yml`` has the job) or from a node-exporter textfile written by
:func:`write_textfile` (``--textfile /var/lib/node_exporter/textfile/botkit_drift.prom``).

Drills: :func:`simulate` drives a LIVE service with normal traffic, then a topic shift to
requests the bot never saw, then a latency fault, and returns the phase boundaries so that
:func:`phase_report` can report on each phase separately. See :func:`inject_latency` for how
the fault is made real.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import io
import json
import math
import random
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from botkit.core import drift
from botkit.core.config import settings
from botkit.core.data import OOS, Dataset
from botkit.core.drift import Check

__all__ = [
    "DELAY_HEADER",
    "NEW_TOPIC_REQUESTS",
    "FaultInjection",
    "GaugeServer",
    "MonitorReport",
    "Phase",
    "Reference",
    "SimulationResult",
    "export_gauges",
    "gauges_text",
    "inject_latency",
    "main",
    "phase_report",
    "reference_from_events",
    "reference_from_training",
    "report",
    "serve_gauges",
    "simulate",
    "write_textfile",
]

# Checks judged here, with the thresholds the monitor passes to drift.py (the rest are drift.py's own).
FALLBACK_MAX_INCREASE = 0.10  # ten more messages in a hundred unanswered is what users notice
OOV_MAX_INCREASE = 0.15  # drift.oov_check's default
FEEDBACK_MAX_DROP = 0.20  # drift.feedback_check's default
NOISE_QUANTILE = 0.99  # an effect size must clear what sampling alone gives 99 times in 100
NOISE_DRAWS = 400  # bootstrap draws for that noise floor (about 50 ms)
LATENCY_HISTORY_BUCKETS = 60  # trailing buckets a window's latency is compared with (drift's window)
MIN_BUCKET_MESSAGES = 5  # a bucket with fewer chats has no meaningful p95 (nan, skipped)
DEFAULT_GAUGE_PORT = 9321
DELAY_HEADER = "X-Botkit-Delay-Ms"  # honoured by the service only with BOTKIT_FAULT_INJECTION=true

_WORD = re.compile(r"\w+")  # the tokenisation drift.oov_rate uses
_EFFECT_SIZES = ("intent_js_distance", "intent_psi")
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


# --------------------------------------------------------------------------------------------
# Reference windows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What "normal" looks like: the sample every window is compared with."""

    name: str
    intents: tuple[str, ...]
    confidences: tuple[float, ...]
    fallbacks: int
    oov_rate: float
    feedback_score: float
    vocabulary: frozenset[str] = field(repr=False)
    model_version: str = ""
    description: str = ""

    @property
    def n(self) -> int:
        return len(self.intents)

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.n if self.n else math.nan

    def summary(self) -> dict[str, Any]:
        mix = Counter(self.intents)
        return {"name": self.name, "model_version": self.model_version, "messages": self.n,
                "fallback_rate": _num(self.fallback_rate), "oov_rate": _num(self.oov_rate),
                "feedback_score": _num(self.feedback_score), "vocabulary_size": len(self.vocabulary),
                "intents": len(mix), "description": self.description}


def _words(texts: Sequence[str]) -> frozenset[str]:
    return frozenset(w for t in texts for w in _WORD.findall(t.lower()))


def _training_vocabulary(ds: Dataset) -> frozenset[str]:
    from botkit.core.redact import redact

    # Events hold redacted text, so the reference is redacted the same way before comparing.
    return _words([redact(t) for t, _ in ds.train])


_TRAINING_CACHE: dict[tuple[str, str], Reference] = {}


def reference_from_training(dataset: Dataset | None = None, model: Any = None) -> Reference:
    """The model's behaviour on its validation split, and the vocabulary of its training texts.

    ``model``: an ``IntentModel``, a ``LoadedModel``, a tag, or None (newest production
    model). ``dataset``: the data the model was trained on (None: the bundled data); for a
    stored model it must match the fingerprint recorded at training time, or this raises
    ``ValueError`` (a validation split the model trained on would make a meaningless reference). The
    feedback score of this reference is a proxy, since training data has no votes: the share
    of validation messages answered correctly (right intent, or a fallback on out-of-scope),
    i.e. what users who rate exactly the right answers "up" would give.
    """
    from botkit.core.data import load
    from botkit.core.redact import redact
    from botkit.core.registry import get_info, load_model, resolve_tag

    version = ""
    if model is None or isinstance(model, str):
        version = resolve_tag(model or None, settings.model_name)
    elif hasattr(model, "model") and hasattr(model, "tag"):
        model, version = model.model, model.tag
    key = (version, "bundled" if dataset is None else dataset.fingerprint())
    if version and key in _TRAINING_CACHE:  # one model, one reference: reports per phase reuse it
        return _TRAINING_CACHE[key]
    ds = dataset or load()
    if version:
        meta = get_info(version)["metadata"]
        if meta.get("data_fingerprint") and meta["data_fingerprint"] != ds.fingerprint():
            raise ValueError(f"model {version} was trained on data set {meta.get('data_name')!r}, not on "
                             f"{ds.name!r} (fingerprints differ): pass the training data (dataset= / --data)")
    if model is None or isinstance(model, str):
        model = load_model(version, settings.model_name).model
    if not ds.val:
        raise ValueError(f"data set {ds.name!r} has no validation split to build a reference from")
    texts, labels = zip(*ds.val, strict=True)
    preds = model.predict(list(texts))
    correct = [(p.fallback if y == OOS else p.intent == y) for p, y in zip(preds, labels, strict=True)]
    vocabulary = _training_vocabulary(ds)
    ref = Reference(
        name=f"training:{version or 'model'}",
        intents=tuple(p.intent for p in preds),
        confidences=tuple(float(p.confidence) for p in preds),
        fallbacks=sum(p.fallback for p in preds),
        oov_rate=drift.oov_rate(vocabulary, [redact(t) for t in texts]),
        feedback_score=sum(correct) / len(correct),
        vocabulary=vocabulary,
        model_version=version,
        description=f"predictions on the {len(texts)}-message validation split of {ds.name}; "
                    "feedback score = share answered correctly (proxy)",
    )
    if version:
        _TRAINING_CACHE[key] = ref
    return ref


@dataclass
class _Window:
    """The events of one time window, as columns (chats sorted by time)."""

    chat_ts: np.ndarray
    texts: list[str]
    intents: list[str]
    confidences: np.ndarray
    fallbacks: np.ndarray
    latency_ms: np.ndarray
    versions: list[str]
    fb_ts: np.ndarray
    ratings: list[str]

    @property
    def n(self) -> int:
        return len(self.intents)

    def select(self, since: float, until: float) -> _Window:
        keep = (self.chat_ts >= since) & (self.chat_ts < until)
        fkeep = (self.fb_ts >= since) & (self.fb_ts < until)
        idx, fidx = np.flatnonzero(keep), np.flatnonzero(fkeep)
        return _Window(self.chat_ts[keep], [self.texts[i] for i in idx], [self.intents[i] for i in idx],
                       self.confidences[keep], self.fallbacks[keep], self.latency_ms[keep],
                       [self.versions[i] for i in idx], self.fb_ts[fkeep], [self.ratings[i] for i in fidx])


def _read_events(store: Any, since: float, until: float) -> _Window:
    """Every chat and feedback event with ``since <= ts < until``.

    The store API reads by position, not by time, so this is one pass over the log; writers
    of several workers interleave, so events are filtered by ``ts`` rather than cut at an id.
    """
    chats: list[Any] = []
    feedback: list[Any] = []
    after = None
    while True:
        batch = store.read(after=after, limit=5000)
        if not batch:
            break
        after = batch[-1].id
        for ev in batch:
            p = ev.payload
            if since <= p.ts < until:
                (chats if ev.kind == "chat" else feedback).append(p)
    chats.sort(key=lambda p: p.ts)
    feedback.sort(key=lambda p: p.ts)
    return _Window(
        chat_ts=np.array([p.ts for p in chats], dtype=float),
        texts=[p.text for p in chats],
        intents=[p.intent for p in chats],
        confidences=np.array([p.confidence for p in chats], dtype=float),
        fallbacks=np.array([p.fallback for p in chats], dtype=bool),
        latency_ms=np.array([p.latency_ms for p in chats], dtype=float),
        versions=[p.model_version for p in chats],
        fb_ts=np.array([p.ts for p in feedback], dtype=float),
        ratings=[p.rating for p in feedback],
    )


def reference_from_events(store: Any, since: float, until: float, *, vocabulary: frozenset[str] | None = None,
                          dataset: Dataset | None = None) -> Reference:
    """An earlier window of real traffic as the reference (e.g. the week after a release).

    The out-of-vocabulary rate is still measured against the model's training vocabulary
    (``vocabulary``, else the training texts of ``dataset``, else of the bundled data).
    """
    if vocabulary is None:
        from botkit.core.data import load

        vocabulary = _training_vocabulary(dataset or load())
    w = _read_events(store, since, until)
    version = Counter(w.versions).most_common(1)[0][0] if w.versions else ""
    return Reference(
        name=f"window:{since:.3f}:{until:.3f}",
        intents=tuple(w.intents),
        confidences=tuple(float(c) for c in w.confidences),
        fallbacks=int(w.fallbacks.sum()),
        oov_rate=drift.oov_rate(vocabulary, w.texts),
        feedback_score=drift.feedback_score(w.ratings),
        vocabulary=vocabulary,
        model_version=version,
        description=f"{w.n} chat and {len(w.ratings)} feedback events from {_iso(since)} to {_iso(until)}",
    )


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _noise_floor(ref: Sequence[str], cur: Sequence[str], draws: int = NOISE_DRAWS) -> dict[str, float]:
    """The 99th percentile of each effect size between two samples of the SAME distribution.

    A parametric bootstrap under "no drift": both windows are redrawn ``draws`` times, at
    their own sizes, from the pooled intent mix, and scored with drift.py's own functions,
    so the floor includes everything drift.py does (PSI's flooring of empty bins too).
    Seeded: the same windows always give the same floor.
    """
    labels = sorted(set(ref) | set(cur))
    n_ref, n_cur = len(ref), len(cur)
    if len(labels) < 2 or n_ref == 0 or n_cur == 0:
        return dict.fromkeys(_EFFECT_SIZES, math.nan)
    ref_tally, cur_tally = Counter(ref), Counter(cur)
    pooled = np.array([ref_tally[k] + cur_tally[k] for k in labels], dtype=float)
    pooled /= pooled.sum()
    rng = np.random.default_rng(0)
    a, b = rng.multinomial(n_ref, pooled, size=draws), rng.multinomial(n_cur, pooled, size=draws)
    js = [drift.js_distance(x, y) for x, y in zip(a, b, strict=True)]
    psi = [drift.population_stability_index(x, y) for x, y in zip(a, b, strict=True)]
    return {"intent_js_distance": float(np.quantile(js, NOISE_QUANTILE)),
            "intent_psi": float(np.quantile(psi, NOISE_QUANTILE))}


def _judge_effect_sizes(checks: list[Check], ref: Sequence[str], cur: Sequence[str],
                        notes: dict[str, dict]) -> list[Check]:
    floors = _noise_floor(ref, cur)
    k = len(set(ref) | set(cur))
    out = []
    for c in checks:
        if c.name in _EFFECT_SIZES:
            floor = floors[c.name]
            notes[c.name] = {"noise_floor_p99": _num(floor), "drift_flagged": c.flagged}
            if c.flagged and not c.value > floor:
                c = Check(c.name, c.value, c.threshold, False,
                          f"Not judged: with {len(cur)} messages against {len(ref)} reference messages over "
                          f"{k} intents, sampling alone reaches {floor:.3g} (99th percentile), above the "
                          f"threshold {c.threshold:g}; the chi-square test speaks for this window.")
        out.append(c)
    return out


def _latency_check(p95_history: Sequence[float], p95_current: Sequence[float],
                   bucket_s: float) -> tuple[Check, list[int]]:
    """drift.latency_anomalies over history + window; only buckets inside the window count."""
    series = [*p95_history, *p95_current]
    finite = int(np.isfinite(np.asarray(series, dtype=float)).sum()) if series else 0
    if finite <= 5:
        return drift.latency_check(series), []
    offset = len(p95_history)
    hits = [i - offset for i in drift.latency_anomalies(series) if i >= offset]
    where = f"{len(hits)} minute(s)" if bucket_s == 60 else f"{len(hits)} of the {bucket_s:g}-second buckets"
    meaning = (f"In {where} the 95th-percentile latency jumped far above its recent level."
               if hits else "Latency stayed within its recent normal range in every bucket.")
    return Check("latency_anomalies", float(len(hits)), 0.0, bool(hits), meaning), hits


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass
class MonitorReport:
    """One window judged against one reference."""

    since: float
    until: float
    reference: dict[str, Any]
    checks: list[Check]
    alerts: list[Check]
    series: dict[str, list]
    counts: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    label: str = ""

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; have {', '.join(c.name for c in self.checks)}")

    def flagged(self, name: str) -> bool:
        return self.check(name).flagged

    @property
    def alert_names(self) -> list[str]:
        return [c.name for c in self.alerts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "window": {"since": self.since, "until": self.until, "since_iso": _iso(self.since),
                       "until_iso": _iso(self.until), "bucket_s": self.counts.get("bucket_s")},
            "reference": self.reference,
            "counts": self.counts,
            "alerts": [c.name for c in self.alerts],
            "checks": [c.to_dict() for c in self.checks],
            "notes": self.notes,
            "series": {k: [_num(v) for v in vals] for k, vals in self.series.items()},
            "paths": {k: str(v) for k, v in self.paths.items()},
        }

    def summary(self) -> str:
        head = f"{self.label or 'window'} {_iso(self.since)} .. {_iso(self.until)}: {self.counts.get('chats', 0)} chats"
        lines = [head + (f", ALERTS: {', '.join(self.alert_names)}" if self.alerts else ", no alerts")]
        for c in self.checks:
            lines.append(f"  {'!!' if c.flagged else '  '} {c.name:20s} {_fmt(c.value):>10s}  "
                         f"(threshold {_fmt(c.threshold)})")
        return "\n".join(lines)


def _num(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bucket_stats(w: _Window, edges: np.ndarray) -> dict[str, list]:
    """Per-bucket series; a bucket with fewer than MIN_BUCKET_MESSAGES chats has nan latency."""
    nb = len(edges) - 1
    idx = np.searchsorted(edges, w.chat_ts, side="right") - 1
    fidx = np.searchsorted(edges, w.fb_ts, side="right") - 1
    out: dict[str, list] = {k: [] for k in ("t", "chats", "p50_ms", "p95_ms", "p99_ms", "fallback_rate",
                                            "feedback_up", "feedback_down")}
    ratings = np.array(w.ratings, dtype=object)
    for b in range(nb):
        mask = idx == b
        n = int(mask.sum())
        lat = w.latency_ms[mask]
        ok = n >= MIN_BUCKET_MESSAGES
        out["t"].append(float(edges[b]))
        out["chats"].append(n)
        for q, key in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
            out[key].append(float(np.percentile(lat, q)) if ok else math.nan)
        out["fallback_rate"].append(float(w.fallbacks[mask].mean()) if n else math.nan)
        fmask = fidx == b
        out["feedback_up"].append(int((ratings[fmask] == "up").sum()) if fmask.any() else 0)
        out["feedback_down"].append(int((ratings[fmask] == "down").sum()) if fmask.any() else 0)
    return out


def _resolve_reference(reference: str | Reference, store: Any, model_tag: str | None, window: _Window,
                       dataset: Dataset | None) -> Reference:
    if isinstance(reference, Reference):
        return reference
    if reference == "training":
        tag = model_tag
        if tag is None and window.versions:
            tag = Counter(window.versions).most_common(1)[0][0]  # the model that actually served the window
        return reference_from_training(dataset, model=tag)
    m = re.fullmatch(r"window:([0-9.eE+-]+):([0-9.eE+-]+)", reference)
    if not m:
        raise ValueError(f"reference must be 'training' or 'window:<since>:<until>', got {reference!r}")
    return reference_from_events(store, float(m.group(1)), float(m.group(2)), dataset=dataset)


def report(store: Any = None, *, since: float | None = None, until: float | None = None,
           reference: str | Reference = "training", model_tag: str | None = None,
           out_dir: str | Path | None = None, bucket_s: float = 60.0, label: str = "",
           latency_history: int = LATENCY_HISTORY_BUCKETS, marks: dict[str, tuple[float, float]] | None = None,
           write: bool = True, expected_chats: int | None = None, dataset: Dataset | None = None) -> MonitorReport:
    """Judge the events of ``[since, until)`` against ``reference`` and write the report files.

    ``store``: an event store (None: the configured one). ``since``/``until``: epoch seconds
    (None: the first event / now). ``reference``: ``"training"`` (the serving model on its
    validation split; ``model_tag`` overrides which model), ``"window:<since>:<until>"`` (an
    earlier window of this store) or a :class:`Reference`. ``bucket_s``: bucket size of the
    per-bucket series and of the latency check (60 in production). ``marks``: named time
    spans (e.g. simulation phases) drawn on the dashboard. ``write=False`` skips the files.
    ``expected_chats``: how many chats the caller knows were answered in the window (a drill
    does); the report then counts those missing from the event log (``events_missing``).
    ``dataset``: the model's training data when it is not the bundled data.
    """
    own_store = store is None
    if own_store:
        from botkit.serving.events import open_store

        store = open_store(settings.events_backend, path=settings.events_path, url=settings.redis_url)
    try:
        if bucket_s <= 0:
            raise ValueError(f"bucket_s must be > 0, got {bucket_s!r}")
        until = time.time() if until is None else float(until)
        lookback = latency_history * bucket_s
        if since is None:
            first = store.read(limit=1)
            since = first[0].payload.ts if first else until - bucket_s
        since = float(since)
        if until <= since:
            raise ValueError(f"empty window: until ({until}) must be after since ({since})")
        full = _read_events(store, since - lookback, until)
        w, hist = full.select(since, until), full.select(since - lookback, since)
        ref = _resolve_reference(reference, store, model_tag, w, dataset)

        nb = max(1, math.ceil((until - since) / bucket_s - 1e-9))
        edges = since + bucket_s * np.arange(nb + 1)
        series = _bucket_stats(w, edges)
        first_hist = 0
        if hist.n:
            first_hist = min(latency_history, math.ceil((since - float(hist.chat_ts.min())) / bucket_s))
        hist_edges = since - bucket_s * np.arange(first_hist, -1, -1)
        hist_series = _bucket_stats(hist, hist_edges) if first_hist else {"p95_ms": []}

        notes: dict[str, Any] = {}
        checks = _judge_effect_sizes(drift.intent_distribution(ref.intents, w.intents), ref.intents, w.intents, notes)
        checks.append(drift.confidence_shift(ref.confidences, w.confidences))
        checks.append(drift.rate_change("fallback_rate", ref.fallbacks, ref.n, int(w.fallbacks.sum()), w.n,
                                        max_increase=FALLBACK_MAX_INCREASE))
        cur_oov = drift.oov_rate(ref.vocabulary, w.texts)
        checks.append(drift.oov_check(ref.oov_rate, cur_oov, max_increase=OOV_MAX_INCREASE))
        cur_score = drift.feedback_score(w.ratings)
        checks.append(drift.feedback_check(ref.feedback_score, cur_score, max_drop=FEEDBACK_MAX_DROP))
        lat_check, anomalous = _latency_check(hist_series["p95_ms"], series["p95_ms"], bucket_s)
        checks.append(lat_check)
        series["latency_anomaly"] = [int(i in anomalous) for i in range(nb)]
        notes["latency_anomalies"] = {"history_buckets": len(hist_series["p95_ms"]),
                                      "anomalous_buckets": [series["t"][i] for i in anomalous]}

        counts = {
            "chats": w.n, "feedback": len(w.ratings), "bucket_s": bucket_s, "buckets": nb,
            "fallback_rate": _num(float(w.fallbacks.mean()) if w.n else math.nan), "oov_rate": _num(cur_oov),
            "feedback_score": _num(cur_score),
            "latency_ms": {f"p{q}": _num(float(np.percentile(w.latency_ms, q)) if w.n else math.nan)
                           for q in (50, 95, 99)},
            "intent_mix": dict(Counter(w.intents).most_common()),
            "reference_intent_mix": dict(Counter(ref.intents).most_common()),
        }
        if expected_chats is not None:
            counts["answered"] = expected_chats
            counts["events_missing"] = expected_chats - w.n
        result = MonitorReport(since, until, ref.summary(), checks, [c for c in checks if c.flagged], series,
                               counts, notes, label=label)
        if write:
            _write_files(result, ref, w, marks or {}, out_dir)
        return result
    finally:
        if own_store:
            store.close()


# --------------------------------------------------------------------------------------------
# Files: dashboard, JSON, Markdown, HTML
# --------------------------------------------------------------------------------------------


def _new_report_dir(label: str) -> Path:
    return settings.new_report_dir("monitor", label)


def _write_files(r: MonitorReport, ref: Reference, w: _Window, marks: dict[str, tuple[float, float]],
                 out_dir: str | Path | None) -> None:
    out = Path(out_dir) if out_dir is not None else _new_report_dir(r.label)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "dashboard.png"
    png.write_bytes(_dashboard(r, ref, w, marks))
    r.paths = {"dir": out, "json": out / "report.json", "md": out / "report.md", "html": out / "report.html",
               "png": png}
    r.paths["json"].write_text(json.dumps(r.to_dict(), indent=2, allow_nan=False) + "\n")
    r.paths["md"].write_text(_markdown(r))
    r.paths["html"].write_text(_html(r, png.read_bytes()))


def _dashboard(r: MonitorReport, ref: Reference, w: _Window, marks: dict[str, tuple[float, float]]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = r.series
    t = np.array(s["t"], dtype=float) - r.since
    width = float(r.counts["bucket_s"])
    unit, scale = ("min", 60.0) if r.until - r.since > 1800 else ("s", 1.0)
    x = t / scale
    bw = width / scale
    fig = Figure(figsize=(14, 12), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2)
    alert_text = ", ".join(r.alert_names) if r.alerts else "none"
    fig.suptitle(f"botkit monitor {r.label}  {_iso(r.since)} .. {_iso(r.until)}  (reference {ref.name})\n"
                 f"alerts: {alert_text}", color="crimson" if r.alerts else "black", fontsize=12)
    anomalous = [i for i, a in enumerate(s["latency_anomaly"]) if a]

    def decorate(ax, time_axis: bool = True) -> None:
        if not time_axis:
            return
        for i in anomalous:
            ax.axvspan(x[i], x[i] + bw, color="red", alpha=0.18, lw=0)
        for name, (start, _end) in marks.items():
            ax.axvline((start - r.since) / scale, color="grey", ls=":", lw=1)
            ax.text((start - r.since) / scale, 1.0, f" {name}", transform=ax.get_xaxis_transform(),
                    fontsize=8, va="top", color="dimgrey")
        ax.set_xlabel(f"{unit} since {_iso(r.since)}")
        ax.grid(alpha=0.3)

    def title(ax, text: str, *names: str) -> None:
        bad = [n for n in names if any(c.name == n and c.flagged for c in r.checks)]
        ax.set_title(text + (f"  [FLAGGED: {', '.join(bad)}]" if bad else ""), color="crimson" if bad else "black",
                     fontsize=10)

    ax = axes[0, 0]
    ax.bar(x, s["chats"], width=bw, align="edge", color="steelblue")
    ax.set_ylabel("chat messages per bucket")
    title(ax, f"traffic ({width:g} s buckets)")
    decorate(ax)

    ax = axes[0, 1]
    mid = x + bw / 2
    for key, style in (("p50_ms", "-"), ("p95_ms", "-"), ("p99_ms", "--")):
        ax.plot(mid, s[key], style, marker=".", label=key.replace("_ms", ""))
    if anomalous:
        ax.plot(mid[anomalous], np.array(s["p95_ms"])[anomalous], "rv", ms=9, label="anomalous p95")
    ax.set_ylabel("latency in service (ms)")
    ax.legend(fontsize=8)
    title(ax, "latency per bucket", "latency_anomalies")
    decorate(ax)

    ax = axes[1, 0]
    fr = np.array(s["fallback_rate"], dtype=float)
    ax.plot(mid, fr, marker="o", color="darkorange", label="current")
    ax.axhline(ref.fallback_rate, color="grey", ls="-", lw=1, label=f"reference {ref.fallback_rate:.2f}")
    limit = ref.fallback_rate + FALLBACK_MAX_INCREASE
    ax.axhline(limit, color="crimson", ls="--", lw=1, label=f"reference + {FALLBACK_MAX_INCREASE:g}")
    high = [i for i, (n, rate) in enumerate(zip(s["chats"], fr, strict=True))
            if n and drift.rate_change("fallback_rate", ref.fallbacks, ref.n, round(rate * n), n,
                                       max_increase=FALLBACK_MAX_INCREASE).flagged]
    if high:
        ax.plot(mid[high], fr[high], "o", color="crimson", ms=9, mfc="none", mew=2, label="significant rise")
    ax.set_ylim(0, 1)
    ax.set_ylabel("fallback rate")
    ax.legend(fontsize=8)
    title(ax, "fallback rate per bucket", "fallback_rate")
    decorate(ax)

    ax = axes[1, 1]
    cur_mix, ref_mix = Counter(w.intents), Counter(ref.intents)
    cur_n, ref_n = max(1, w.n), max(1, ref.n)
    names = sorted(set(cur_mix) | set(ref_mix), key=lambda k: -max(cur_mix[k] / cur_n, ref_mix[k] / ref_n))[:12]
    pos = np.arange(len(names))
    ax.barh(pos - 0.2, [ref_mix[k] / ref_n for k in names], height=0.4, color="grey", label="reference")
    ax.barh(pos + 0.2, [cur_mix[k] / cur_n for k in names], height=0.4, color="steelblue", label="current")
    ax.set_yticks(pos, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of messages")
    ax.legend(fontsize=8)
    title(ax, "intent mix, top 12", "intent_chi2_p", "intent_js_distance", "intent_psi")

    ax = axes[2, 0]
    bins = np.linspace(0, 1, 21)
    for values, color, name in ((np.asarray(ref.confidences), "grey", "reference"),
                                (w.confidences, "steelblue", "current")):
        if len(values):
            ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), histtype="step", lw=2,
                    color=color, label=f"{name} (n={len(values)})")
    ax.set_xlabel("confidence of the top intent")
    ax.set_ylabel("share of messages")
    ax.legend(fontsize=8)
    title(ax, "confidence", "confidence_ks")

    ax = axes[2, 1]
    ax.bar(x, s["feedback_up"], width=bw, align="edge", color="seagreen", label="up")
    ax.bar(x, [-d for d in s["feedback_down"]], width=bw, align="edge", color="crimson", label="down")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("votes per bucket (down below 0)")
    ax.legend(fontsize=8)
    title(ax, "user feedback", "feedback_drop")
    decorate(ax)

    # fixed margins: tight_layout would cost more than the rest of the report together
    fig.subplots_adjust(left=0.06, right=0.98, top=0.91, bottom=0.05, hspace=0.38, wspace=0.34)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _check_rows(r: MonitorReport) -> list[tuple[str, str, str, str, str]]:
    return [(c.name, _fmt(c.value), _fmt(c.threshold), "FLAGGED" if c.flagged else "ok", c.meaning) for c in r.checks]


def _bucket_rows(r: MonitorReport) -> list[tuple[str, ...]]:
    s = r.series
    return [(_iso(s["t"][i])[11:23], str(s["chats"][i]), _fmt(s["p50_ms"][i]), _fmt(s["p95_ms"][i]),
             _fmt(s["p99_ms"][i]), _fmt(s["fallback_rate"][i]), f"{s['feedback_up'][i]}/{s['feedback_down'][i]}",
             "ANOMALY" if s["latency_anomaly"][i] else "")
            for i in range(len(s["t"]))]


_BUCKET_HEAD = ("bucket (UTC)", "chats", "p50 ms", "p95 ms", "p99 ms", "fallback", "up/down", "latency")
_MAX_TABLE_BUCKETS = 120


def _delivery(c: dict[str, Any]) -> str:
    if "answered" not in c:
        return ""
    return f"; {c['answered']} answered by the service, {c['events_missing']} of them missing from the event log"


def _markdown(r: MonitorReport) -> str:
    ref, c = r.reference, r.counts
    lines = [f"# botkit monitor report {r.label}".rstrip(), "",
             f"- window: {_iso(r.since)} .. {_iso(r.until)} ({c['buckets']} buckets of {c['bucket_s']:g} s)",
             f"- reference: `{ref['name']}`: {ref['description']}",
             f"- traffic: {c['chats']} chat messages, {c['feedback']} feedback votes; fallback rate "
             f"{_fmt(c['fallback_rate'])} (reference {_fmt(ref['fallback_rate'])}), OOV rate {_fmt(c['oov_rate'])} "
             f"(reference {_fmt(ref['oov_rate'])}){_delivery(c)}",
             f"- latency in service: p50 {_fmt(c['latency_ms']['p50'])} ms, p95 {_fmt(c['latency_ms']['p95'])} ms, "
             f"p99 {_fmt(c['latency_ms']['p99'])} ms",
             f"- **alerts: {', '.join(r.alert_names) if r.alerts else 'none'}**", "",
             "## Checks", "", "| check | value | threshold | status | meaning |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in _check_rows(r)]
    lines += ["", "## Per bucket", ""]
    if len(r.series["t"]) <= _MAX_TABLE_BUCKETS:
        lines += [f"| {' | '.join(_BUCKET_HEAD)} |", "|" + "---|" * len(_BUCKET_HEAD)]
        lines += [f"| {' | '.join(row)} |" for row in _bucket_rows(r)]
    else:
        lines.append(f"{len(r.series['t'])} buckets: see report.json for the series.")
    lines += ["", "## Dashboard", "", "![dashboard](dashboard.png)", ""]
    return "\n".join(lines)


def _html(r: MonitorReport, png: bytes) -> str:
    e = html.escape
    ref, c = r.reference, r.counts

    def table(head: Sequence[str], rows: Sequence[Sequence[str]], status_col: int | None = None) -> str:
        out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
        for row in rows:
            cls = ' class="bad"' if status_col is not None and row[status_col] in ("FLAGGED", "ANOMALY") else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>")
        return "\n".join([*out, "</table>"])

    alerts = ", ".join(r.alert_names) if r.alerts else "none"
    buckets = (table(_BUCKET_HEAD, _bucket_rows(r), 7) if len(r.series["t"]) <= _MAX_TABLE_BUCKETS
               else f"<p>{len(r.series['t'])} buckets: see report.json for the series.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>botkit monitor {e(r.label)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1300px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}} tr.bad td{{background:#fde2e2}}
.alerts{{font-weight:bold;color:{'#b00' if r.alerts else '#070'}}} img{{max-width:100%}}</style></head><body>
<h1>botkit monitor report {e(r.label)}</h1>
<ul><li>window: {e(_iso(r.since))} .. {e(_iso(r.until))} ({c['buckets']} buckets of {c['bucket_s']:g} s)</li>
<li>reference: <code>{e(ref['name'])}</code>: {e(ref['description'])}</li>
<li>traffic: {c['chats']} chat messages, {c['feedback']} feedback votes; fallback rate {e(_fmt(c['fallback_rate']))}
(reference {e(_fmt(ref['fallback_rate']))}), OOV rate {e(_fmt(c['oov_rate']))}
(reference {e(_fmt(ref['oov_rate']))}){e(_delivery(c))}</li>
<li>latency in service: p50 {e(_fmt(c['latency_ms']['p50']))} ms, p95 {e(_fmt(c['latency_ms']['p95']))} ms,
p99 {e(_fmt(c['latency_ms']['p99']))} ms</li></ul>
<p class="alerts">alerts: {e(alerts)}</p>
<h2>Checks</h2>
{table(("check", "value", "threshold", "status", "meaning"), _check_rows(r), 3)}
<h2>Per bucket</h2>
{buckets}
<h2>Dashboard</h2>
<img alt="dashboard" src="data:image/png;base64,{base64.b64encode(png).decode()}">
</body></html>
"""


# --------------------------------------------------------------------------------------------
# Prometheus gauges
# --------------------------------------------------------------------------------------------


def _checks_of(checks: MonitorReport | Sequence[Check]) -> list[Check]:
    return list(checks.checks) if isinstance(checks, MonitorReport) else list(checks)


def export_gauges(checks: MonitorReport | Sequence[Check], registry: Any = None) -> Any:
    """A prometheus_client registry holding the checks as gauges.

    ``botkit_drift_score{check="..."}`` is the check's value (NaN when a window held too
    little data), ``botkit_drift_flagged{check="..."}`` is 1 when it is an alert, and
    ``botkit_drift_report_timestamp_seconds`` says when the checks were computed (a stale
    value means the monitor stopped running).
    """
    import prometheus_client as pc

    registry = registry or pc.CollectorRegistry(auto_describe=True)
    score = pc.Gauge("botkit_drift_score", "Value of each drift check of the last monitor report.", ["check"],
                     registry=registry)
    flagged = pc.Gauge("botkit_drift_flagged", "1 when a drift check of the last monitor report is an alert.",
                       ["check"], registry=registry)
    stamp = pc.Gauge("botkit_drift_report_timestamp_seconds", "When the last monitor report was computed.",
                     registry=registry)
    for c in _checks_of(checks):
        score.labels(check=c.name).set(float(c.value))
        flagged.labels(check=c.name).set(1.0 if c.flagged else 0.0)
    stamp.set(time.time())
    return registry


def gauges_text(checks: MonitorReport | Sequence[Check]) -> str:
    """The gauges in the Prometheus text exposition format."""
    import prometheus_client as pc

    return pc.generate_latest(export_gauges(checks)).decode()


def write_textfile(checks: MonitorReport | Sequence[Check], path: str | Path) -> Path:
    """Write the gauges for node-exporter's textfile collector (atomically: temp file + rename)."""
    import prometheus_client as pc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pc.write_to_textfile(str(path), export_gauges(checks))
    return path


@dataclass
class GaugeServer:
    """A running /metrics endpoint for the drift gauges; ``update`` swaps in new checks."""

    port: int
    _httpd: Any
    _thread: threading.Thread
    _holder: list

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def update(self, checks: MonitorReport | Sequence[Check]) -> None:
        self._holder[0] = export_gauges(checks)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> GaugeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_gauges(checks: MonitorReport | Sequence[Check], port: int = DEFAULT_GAUGE_PORT,
                 addr: str = "127.0.0.1") -> GaugeServer:
    """Serve the gauges on ``http://127.0.0.1:PORT/metrics`` (port 0: a free one) in a thread."""
    import prometheus_client as pc

    if addr not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to bind {addr}: botkit's servers listen on loopback only")
    holder = [export_gauges(checks)]

    class _Current:  # the registry served is whatever `update` put in last
        def collect(self):
            yield from holder[0].collect()

    registry = pc.CollectorRegistry(auto_describe=False)
    registry.register(_Current())
    httpd, thread = pc.start_http_server(port, addr=addr, registry=registry)
    return GaugeServer(httpd.server_address[1], httpd, thread, holder)


# --------------------------------------------------------------------------------------------
# Simulation: normal traffic, a topic shift, a latency fault, against a live service
# --------------------------------------------------------------------------------------------


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
    import httpx

    from botkit.core.data import load

    if rps <= 0:
        raise ValueError(f"rps must be > 0, got {rps!r}")
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to drill {url}: simulate() drives services on loopback only")
    ds = dataset or load()
    in_scope = [(t, y) for t, y in ds.test if y != OOS]
    oos = [t for t, y in ds.test if y == OOS] or [t for t, y in ds.train if y == OOS]
    oos_share = sum(y == OOS for _, y in ds.val) / max(1, len(ds.val))
    rng = random.Random(seed)
    plans = {
        "normal": _plan(rng, round(rps * normal_s), in_scope, oos, oos_share, 0.0, feedback_rate),
        "shift": _plan(rng, round(rps * shift_s), in_scope, oos, 2 / 3, shift_share, feedback_rate),
        "fault": _plan(rng, round(rps * fault_s), in_scope, oos, oos_share, 0.0, feedback_rate),
    }
    # a surge sends normal traffic too: the same mix, so that only the load changes
    surge_texts = [m.text for m in _plan(random.Random(seed + 1), 2000, in_scope, oos, oos_share, 0.0, 0.0)]
    local = threading.local()
    state: dict[str, Any] = {"phase": "", "done": 0, "n": 0, "failed": 0, "extra": ""}
    lock = threading.Lock()
    say = (progress if callable(progress) else (lambda s: print(s, file=sys.stderr, flush=True))) if progress \
        else (lambda s: None)

    def client() -> httpx.Client:
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=url, timeout=timeout_s)
            clients.append(local.c)
        return local.c

    def one(phase: Phase, m: _Message, headers: dict[str, str]) -> None:
        ok = False
        answer: dict = {}
        try:
            r = client().post("/chat", json={"message": m.text, "session_id": f"sim-{phase.name}"}, headers=headers)
            ok = r.status_code == 200
            answer = r.json() if ok else {}
        except Exception:
            ok = False
        fb_ok = None
        if ok and m.vote:
            try:
                fr = client().post("/feedback", json={"request_id": answer["request_id"],
                                                      "rating": _rating(m, answer)})
                fb_ok = fr.status_code == 200
            except Exception:
                fb_ok = False
        with lock:
            phase.sent += 1
            phase.failed += not ok
            if fb_ok is not None:
                phase.feedback_sent += 1
                phase.feedback_failed += not fb_ok
            state["done"] += 1
            state["failed"] += not ok

    clients: list[httpx.Client] = []
    phases: dict[str, Phase] = {}
    durations = {"normal": normal_s, "shift": shift_s, "fault": fault_s}
    fault: FaultInjection | None = None
    say(f"simulating against {url}: normal {normal_s:g} s, shift {shift_s:g} s, fault {fault_s:g} s at {rps:g} rps")
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="sim") as pool, \
            _progress_printer(progress, state):
        try:
            for name in _PHASES:
                plan = plans[name]
                phase = phases[name] = Phase(name, time.time())
                state.update(phase=name, done=0, n=len(plan), failed=0, extra="")
                headers: dict[str, str] = {}
                if name == "fault":
                    fault = inject_latency(url, fault_latency_ms, mode=fault_mode, texts=surge_texts,
                                           max_clients=max_surge_clients, timeout_s=timeout_s, seed=seed)
                    headers = fault.headers
                    state["extra"] = f"fault by {fault.mode}"
                t0 = time.monotonic()
                futures = []
                for i, m in enumerate(plan):
                    delay = t0 + i / rps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    futures.append(pool.submit(one, phase, m, headers))
                # the phase lasts its full length even if the last request went out early
                rest = t0 + durations[name] - time.monotonic()
                if rest > 0:
                    time.sleep(rest)
                for f in futures:
                    f.result()
                if fault is not None and name == "fault":
                    fault.stop()
                    phase.extra_answered = fault.detail.get("probe_answered", 0) + (
                        fault.detail.get("background_sent", 0) - fault.detail.get("background_failed", 0))
                phase.end = time.time()
                say(f"  [{name}] done: {phase.sent} sent, {phase.failed} failed, {phase.feedback_sent} votes, "
                    f"{phase.end - phase.start:.1f} s")
        finally:
            if fault is not None:
                fault.stop()
            for c in clients:
                c.close()
    return SimulationResult(url, seed, rps, phases, fault.mode if fault else "none",
                            dict(fault.detail) if fault else {})


def phase_report(store: Any, sim: SimulationResult, *, reference: str | Reference = "training",
                 bucket_s: float = 5.0, model_tag: str | None = None, write: bool = True,
                 overall: bool = False) -> dict[str, MonitorReport]:
    """One report per simulated phase (each judged on its own window), plus ``overall`` if asked.

    Each phase report also says how many chats the service answered in that phase and how
    many of them are missing from the event log (``counts["events_missing"]``, expected 0).
    """
    out = {name: report(store, since=p.start, until=p.end, reference=reference, model_tag=model_tag,
                        bucket_s=bucket_s, label=name, write=write, expected_chats=p.answered)
           for name, p in sim.phases.items()}
    if overall and sim.phases:
        first, last = min(p.start for p in sim.phases.values()), max(p.end for p in sim.phases.values())
        out["overall"] = report(store, since=first, until=last, reference=reference, model_tag=model_tag,
                                bucket_s=bucket_s, label="overall", marks=sim.windows(), write=write)
    return out


# --------------------------------------------------------------------------------------------
# Command line: python -m botkit.ops.monitor report|simulate
# --------------------------------------------------------------------------------------------


def _when(text: str | None, now: float) -> float | None:
    """Epoch seconds, or relative to now: '-90s', '-15m', '-2h', '-1d'."""
    if text is None:
        return None
    m = re.fullmatch(r"-(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if m:
        return now - float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m botkit.ops.monitor", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="judge a window of the event log; write report files and gauges",
                       description="Judge a window of the event log; exits 1 when any check is flagged.")
    r.add_argument("--since", help="epoch seconds or relative (-15m, -2h, -1d); default: the first event")
    r.add_argument("--until", help="epoch seconds or relative; default: now")
    r.add_argument("--reference", default="training", help="'training' or 'window:<since>:<until>' (epoch s)")
    r.add_argument("--model", help="model tag for the training reference (default: the one in the events)")
    r.add_argument("--data", help="the model's training data, when not the bundled data (file or folder)")
    r.add_argument("--bucket-s", type=float, default=60.0, help="bucket size in seconds (default: %(default)s)")
    r.add_argument("--out", help="report folder (default: <reports_dir>/monitor/<timestamp>)")
    r.add_argument("--textfile", help="also write the gauges here (node-exporter textfile collector)")
    r.add_argument("--gauges-port", type=int, help=f"serve the gauges on 127.0.0.1:PORT/metrics "
                                                   f"(e.g. {DEFAULT_GAUGE_PORT}) until Ctrl-C")
    r.add_argument("--serve-s", type=float, help="with --gauges-port: stop serving after this many seconds")
    s = sub.add_parser("simulate", help="drive a live service: normal traffic, topic shift, latency fault")
    s.add_argument("--url", required=True, help="e.g. http://127.0.0.1:3000 (loopback)")
    s.add_argument("--normal-s", type=float, default=60.0)
    s.add_argument("--shift-s", type=float, default=40.0)
    s.add_argument("--fault-s", type=float, default=30.0)
    s.add_argument("--rps", type=float, default=20.0)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--fault-latency-ms", type=float, default=250.0)
    s.add_argument("--fault-mode", choices=("auto", "header", "surge"), default="auto")
    s.add_argument("--bucket-s", type=float, default=5.0, help="bucket size of the per-phase reports")
    a = p.parse_args(argv)
    now = time.time()
    if a.cmd == "report":
        dataset = None
        if a.data:
            from botkit.core.data import load

            dataset = load(a.data, seed=settings.seed)
        rep = report(since=_when(a.since, now), until=_when(a.until, now), reference=a.reference,
                     model_tag=a.model, out_dir=a.out, bucket_s=a.bucket_s, dataset=dataset)
        print(rep.summary())
        print(f"report: {rep.paths['dir']}")
        if a.textfile:
            print(f"gauges: {write_textfile(rep, a.textfile)}")
        if a.gauges_port is not None:
            srv = serve_gauges(rep, a.gauges_port)
            print(f"serving gauges on {srv.url} (Ctrl-C to stop)", flush=True)
            try:
                if a.serve_s:
                    time.sleep(a.serve_s)
                else:
                    threading.Event().wait()
            except KeyboardInterrupt:
                pass
            finally:
                srv.stop()
        return 1 if rep.alerts else 0
    sim = simulate(a.url, normal_s=a.normal_s, shift_s=a.shift_s, fault_s=a.fault_s, rps=a.rps, seed=a.seed,
                   fault_latency_ms=a.fault_latency_ms, fault_mode=a.fault_mode)
    print(json.dumps(sim.to_dict(), indent=2))
    time.sleep(0.5)  # the service's event writer flushes every 50 ms
    for rep in phase_report(None, sim, bucket_s=a.bucket_s, overall=True).values():
        print(rep.summary())
        print(f"  report: {rep.paths['dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
