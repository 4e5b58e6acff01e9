"""What each group of replicas did in a window: counter and histogram deltas of their ``/metrics``.

Why scrape the replicas directly rather than ask Prometheus: the window is exact (a snapshot at
its start and end, no scrape-interval lag), and the counters are per replica, so a canary of the
*same* model as stable can still be told apart. Prometheus stores the very same series; the
PromQL in :mod:`botkit.ops.releases.queries` reads them over a window for dashboards and
Kubernetes. Latency and confidence come as histogram buckets; :func:`expand` turns bucket counts
into samples spread inside each bucket, which is what Mann-Whitney and KS then compare (coarse,
but identical binning for both groups).

Negative feedback needs to know which model answered, which only the event stream knows:
:func:`feedback_by_model` joins feedback to chat events in Redis by ``request_id``.
"""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping

from botkit.core.canary import GroupSample

__all__ = ["Snapshot", "delta", "expand", "feedback_by_model", "group_sample", "scrape"]

Snapshot = dict[tuple[str, frozenset], float]
CHAT = "/chat"
_LATENCY = "bentoml_service_request_duration_seconds_bucket"
_REQUESTS = "bentoml_service_request_total"


def scrape(url: str, timeout_s: float = 5.0) -> Snapshot:
    """Every sample of ``url``/metrics, keyed by (name, labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=timeout_s) as r:
        text = r.read().decode()
    out: Snapshot = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return out


def delta(before: Snapshot, after: Snapshot) -> Snapshot:
    """``after - before`` per series (a series new in ``after`` counts from 0; a reset counts from 0)."""
    out: Snapshot = {}
    for key, v in after.items():
        d = v - before.get(key, 0.0)
        out[key] = v if d < 0 else d
    return out


def _sum(snap: Snapshot, name: str, **want: str) -> float:
    return sum(v for (n, lab), v in snap.items() if n == name and all(dict(lab).get(k) == x for k, x in want.items()))


def _buckets(snap: Snapshot, name: str, **want: str) -> dict[float, float]:
    """Cumulative bucket counts by upper bound, summed over every other label."""
    out: dict[float, float] = defaultdict(float)
    for (n, lab), v in snap.items():
        labels = dict(lab)
        if n == name and all(labels.get(k) == x for k, x in want.items()):
            out[float(labels["le"])] += v
    return dict(out)


def expand(cumulative: Mapping[float, float], scale: float = 1.0) -> list[float]:
    """Samples from cumulative histogram buckets, times ``scale``.

    The ``n`` observations of a bucket are spread evenly inside it (``lower + (upper - lower) *
    (i + 0.5) / n``), which is the linear interpolation ``histogram_quantile`` uses: a median read
    from them moves smoothly instead of hopping from bucket bound to bucket bound (25 -> 50 ms
    reads as +100 % where the real shift may be a few ms). ``+Inf`` observations sit at twice the
    last finite bound. Both groups get the same treatment, so ranks inside a bucket favour neither.
    """
    bounds = sorted(cumulative)
    finite = [b for b in bounds if math.isfinite(b)]
    out: list[float] = []
    prev, lower = 0.0, 0.0
    for b in bounds:
        n = max(round(cumulative[b] - prev), 0)
        prev = cumulative[b]
        if not math.isfinite(b):
            out.extend([(2 * finite[-1] if finite else 0.0) * scale] * n)
            continue
        out.extend((lower + (b - lower) * (i + 0.5) / n) * scale for i in range(n))
        lower = b
    return out


def group_sample(deltas: Iterable[Snapshot]) -> GroupSample:
    """One group's window, summed over its replicas' deltas."""
    g = GroupSample()
    for d in deltas:
        codes = defaultdict(float)
        for (n, lab), v in d.items():
            labels = dict(lab)
            if n == _REQUESTS and labels.get("endpoint") == CHAT:
                codes[labels.get("http_response_code", "")] += v
        g.requests += int(sum(codes.values()))
        g.errors += int(sum(v for c, v in codes.items() if c.startswith("5")))
        g.latencies_ms += expand(_buckets(d, _LATENCY, endpoint=CHAT), 1000.0)
        g.chats += int(_sum(d, "botkit_chat_requests_total"))
        g.fallbacks += int(_sum(d, "botkit_chat_fallbacks_total"))
        g.confidences += expand(_buckets(d, "botkit_chat_confidence_bucket"))
    return g


def feedback_by_model(redis_url: str, since_ts: float, limit: int = 200_000) -> dict[str, tuple[int, int]]:
    """``{model_version: (negative, total)}`` for feedback given since ``since_ts`` (epoch seconds)."""
    from botkit.serving.events import ChatEvent, FeedbackEvent, open_store

    store = open_store("redis", url=redis_url)
    chats: dict[str, str] = {}
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    try:
        after, seen = f"{int(since_ts * 1000)}-0", 0
        while seen < limit:
            page = store.read(after, limit=1000)
            if not page:
                break
            after, seen = page[-1].id, seen + len(page)
            for ev in page:
                p = ev.payload
                if isinstance(p, ChatEvent):
                    chats[p.request_id] = p.model_version
                elif isinstance(p, FeedbackEvent) and p.request_id in chats:
                    row = out[chats[p.request_id]]
                    row[0] += p.rating == "down"
                    row[1] += 1
    finally:
        store.close()
    return {k: (v[0], v[1]) for k, v in out.items()}
