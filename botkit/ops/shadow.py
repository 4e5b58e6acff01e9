"""Shadow model report: how would the candidate have answered production's real traffic?

A replica started with ``BOTKIT_SHADOW_MODEL=TAG`` predicts every message with a second model
off the response path and stores that answer as a ``ShadowEvent`` keyed by the chat event's
``request_id`` (users only ever see production's; production's durable ack never waits for it).
This module joins the two back (rows from before ShadowEvent, with ``shadow_*`` fields on the chat
event itself, are read too) and says how far the two agree:
overall and per intent, each model's fallback rate, and the most frequent disagreements with
(redacted) example messages. :func:`measure_cost` measures what the shadow costs: the same
Locust load against one server without and one with the shadow, interleaved in one run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from botkit.core.config import settings
from botkit.core.redact import redact
from botkit.serving.events import ChatEvent, EventStore, ShadowEvent, open_store

__all__ = ["ShadowReport", "measure_cost", "read_shadowed", "render_markdown", "shadow_report", "write_report"]


@dataclass
class ShadowReport:
    """Agreement of a shadow model with production on the same messages."""

    production_models: dict[str, int]
    shadow_models: dict[str, int]
    events: int  # chat events with a shadow answer
    unanswered: int  # events of a shadowed replica whose shadow failed (no shadow intent)
    agreement: float | None
    fallback_production: float | None
    fallback_shadow: float | None
    per_intent: list[dict[str, Any]] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    cost: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_shadowed(store: EventStore | None = None, *, shadow_model: str | None = None,
                  limit: int = 200_000) -> list[ChatEvent]:
    """Chat events joined with their shadow's answer by ``request_id`` (``shadow_*`` fields filled),
    optionally for one shadow version, in stream order of the chat events. Chat events no shadow
    answered (sampled out, another replica) are left out."""
    own = store is None
    store = store or open_store(settings.events_backend, path=settings.events_path, url=settings.redis_url)
    chats: list[ChatEvent] = []
    shadows: dict[str, ShadowEvent] = {}
    after = None
    try:
        while True:  # one pass over all kinds: the shadow event may land before or after its chat
            page = store.read(after, limit=1000)
            if not page:
                break
            after = page[-1].id
            for ev in page:
                p = ev.payload
                if isinstance(p, ChatEvent):
                    chats.append(p)
                elif isinstance(p, ShadowEvent) and (shadow_model is None or p.model_version == shadow_model):
                    shadows.setdefault(p.request_id, p)
    finally:
        if own:
            store.close()
    out: list[ChatEvent] = []
    for c in chats:
        s = shadows.get(c.request_id)
        if s is not None:
            out.append(replace(c, shadow_intent=s.intent, shadow_confidence=s.confidence,
                               shadow_fallback=s.fallback, shadow_model_version=s.model_version))
        elif c.shadow_model_version and (shadow_model is None or c.shadow_model_version == shadow_model):
            out.append(c)  # written before ShadowEvent existed: the answer is on the chat event
        if len(out) >= limit:
            break
    return out


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def shadow_report(events: Iterable[ChatEvent], *, top: int = 10, examples: int = 3) -> ShadowReport:
    """Agreement overall and per production intent, fallback rates, top disagreements with examples."""
    events = list(events)
    answered = [e for e in events if e.shadow_intent is not None]
    n = len(answered)
    agree = sum(e.intent == e.shadow_intent for e in answered)
    by_intent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    pairs: Counter[tuple[str, str]] = Counter()
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in answered:
        by_intent[e.intent][0] += 1
        if e.intent == e.shadow_intent:
            by_intent[e.intent][1] += 1
        else:
            key = (e.intent, e.shadow_intent)
            pairs[key] += 1
            if len(samples[key]) < examples and redact(e.text) not in samples[key]:
                samples[key].append(redact(e.text))  # stored text is redacted already; twice is safe
    per_intent = sorted(({"intent": i, "n": c, "agreement": _rate(a, c)} for i, (c, a) in by_intent.items()),
                        key=lambda r: (r["agreement"], -r["n"]))
    disagreements = [{"production": p, "shadow": s, "count": c, "examples": samples[(p, s)]}
                     for (p, s), c in pairs.most_common(top)]
    return ShadowReport(
        production_models=dict(Counter(e.model_version for e in events)),
        shadow_models=dict(Counter(e.shadow_model_version for e in events)),
        events=n, unanswered=len(events) - n, agreement=_rate(agree, n),
        fallback_production=_rate(sum(e.fallback for e in answered), n),
        fallback_shadow=_rate(sum(bool(e.shadow_fallback) for e in answered), n),
        per_intent=per_intent, disagreements=disagreements)


def _one_load(production: str, shadow: str, users: int, duration_s: float, workers: int | None,
              out_dir: Path, sample: float = 1.0) -> dict[str, Any]:
    from botkit.ops.loadtest import run_loadtest
    from botkit.serving.serve import Server

    env = {"BOTKIT_SHADOW_MODEL": shadow, "BOTKIT_SHADOW_SAMPLE": str(sample)}
    with Server(model=production, workers=workers, env=env) as srv:
        res = run_loadtest(srv.url, users=users, spawn_rate=max(users, 1), duration_s=duration_s,
                           progress=False, out_dir=out_dir)
    t = res.summary["total"]
    return {"shadow": bool(shadow), "rps": t["rps"], "p50_ms": t["p50_ms"], "p95_ms": t["p95_ms"],
            "p99_ms": t["p99_ms"], "requests": t["requests"], "failures": t["failures"]}


def measure_cost(production: str, shadow: str, *, users: int = 32, duration_s: float = 20.0, rounds: int = 2,
                 workers: int | None = None, out_dir: Path | None = None, sample: float = 1.0) -> dict[str, Any]:
    """Throughput and latency with and without the shadow, same load, interleaved ``rounds`` times.

    Interleaving (off, on, off, on) spreads slow drifts of a shared machine over both arms.
    ``throughput_cost`` is ``1 - rps_with / rps_without`` (target: at most 0.10).
    """
    out = settings.new_report_dir("shadow-cost", out_dir=out_dir)
    runs = []
    for r in range(rounds):
        for arm in ("", shadow):
            runs.append(_one_load(production, arm, users, duration_s, workers,
                                  out / f"round{r + 1}-{'with' if arm else 'without'}", sample))

    def mean(key: str, on: bool) -> float:
        vals = [x[key] for x in runs if x["shadow"] is on]
        return round(sum(vals) / len(vals), 3)

    without, with_ = mean("rps", False), mean("rps", True)
    return {"production": production, "shadow": shadow, "users": users, "duration_s": duration_s,
            "rounds": rounds, "sample": sample, "runs": runs, "rps_without": without, "rps_with": with_,
            "p95_without_ms": mean("p95_ms", False), "p95_with_ms": mean("p95_ms", True),
            "p50_without_ms": mean("p50_ms", False), "p50_with_ms": mean("p50_ms", True),
            "throughput_cost": round(1 - with_ / without, 4) if without else None,
            "target": 0.10}


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def render_markdown(rep: ShadowReport) -> str:
    """The report as Markdown (also what the CLI prints)."""
    lines = ["# Shadow report", "",
             f"- production: {', '.join(f'{k} ({v})' for k, v in rep.production_models.items()) or 'none'}",
             f"- shadow: {', '.join(f'{k} ({v})' for k, v in rep.shadow_models.items()) or 'none'}",
             f"- messages answered by both: {rep.events} (shadow failed on {rep.unanswered})",
             f"- agreement: {_pct(rep.agreement)}",
             f"- fallback rate: production {_pct(rep.fallback_production)}, shadow {_pct(rep.fallback_shadow)}",
             "", "## Agreement per production intent (lowest first)", "", "| intent | n | agreement |",
             "|---|---:|---:|"]
    lines += [f"| {r['intent']} | {r['n']} | {_pct(r['agreement'])} |" for r in rep.per_intent]
    lines += ["", "## Top disagreements", "", "| production | shadow | count | examples (redacted) |",
              "|---|---|---:|---|"]
    lines += [f"| {d['production']} | {d['shadow']} | {d['count']} | "
              f"{' / '.join(x.replace('|', '/') for x in d['examples'])} |" for d in rep.disagreements]
    if rep.cost:
        c = rep.cost
        lines += ["", "## Cost of the shadow (same load, interleaved)", "",
                  f"- {c['users']} closed-loop users, {c['duration_s']:g} s x {c['rounds']} rounds per arm, "
                  f"shadow on {c.get('sample', 1.0):.0%} of messages",
                  f"- throughput: {c['rps_without']:.1f} rps without, {c['rps_with']:.1f} rps with "
                  f"(cost {_pct(c['throughput_cost'])}, target <= {_pct(c['target'])})",
                  f"- p50: {c['p50_without_ms']:g} -> {c['p50_with_ms']:g} ms; "
                  f"p95: {c['p95_without_ms']:g} -> {c['p95_with_ms']:g} ms"]
    return "\n".join(lines) + "\n"


def write_report(rep: ShadowReport, out_dir: Path | None = None) -> Path:
    """``shadow.json`` and ``shadow.md`` in a fresh ``reports/shadow/...`` folder (or ``out_dir``)."""
    out = settings.new_report_dir("shadow", out_dir=out_dir)
    (out / "shadow.json").write_text(json.dumps(rep.to_dict(), indent=2))
    (out / "shadow.md").write_text(render_markdown(rep))
    return out
