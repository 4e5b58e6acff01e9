"""Canary release on the local cluster: a share of live traffic, a statistical verdict, then act on it.

``run_canary(cluster, TAG)``:

1. restarts the canary replica(s) (the last ``canaries`` ones) on TAG, with fault injection for a
   drill, and as many *baseline* replicas on the stable model (Kayenta's canary-vs-baseline: both
   fresh, both warmed up, both at the same weight), and sets HAProxy weights so the canaries get
   ``weight`` percent of new requests (the baselines as much);
2. runs traffic (Locust through HAProxy, labelled questions with honest feedback) and takes each
   replica's ``/metrics`` at the start and end of the window, so canary and stable are compared on
   the same traffic, the same seconds and the same noisy machine (:mod:`.samples`): canary against
   baseline (against the stable replicas when the cluster is too small for a baseline);
3. judges with :func:`botkit.core.canary.analyse` (per-metric tests, minimum effects, a score);
4. **promote**: through the promotion policy (``botkit/policy.yaml``, ``governance.promote``), then a
   rolling update of the stable replicas to TAG; **roll back**: canary weights to 0, canary replicas
   restarted on the stable model, weights restored. A policy rejection also rolls back.

Exit codes for the CLI: 0 promoted, 3 rolled back. Every step goes to the audit log; the report
folder gets ``canary.json``, ``canary.md`` and ``canary.png`` (canary vs stable per metric).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botkit.core.canary import PROMOTE, CanaryReport, GroupSample, analyse
from botkit.core.config import settings
from botkit.ops.governance import AuditLog
from botkit.ops.releases.rollout import deploy, restart_on
from botkit.ops.releases.samples import delta, feedback_by_model, group_sample, scrape
from botkit.ops.releases.traffic import Traffic

if TYPE_CHECKING:
    from botkit.ops.cluster import Cluster

__all__ = ["DRILLS", "CanaryResult", "run_canary", "warm_up", "weights_for"]

# Headers the traffic sends; only replicas started with fault injection (the canary) act on them.
DRILLS: dict[str, dict[str, str]] = {
    "latency": {"x-botkit-delay-ms": "150"},
    "errors": {"x-botkit-error-ratio": "0.2"},
}
EXIT_PROMOTED, EXIT_ROLLED_BACK = 0, 3


@dataclass
class CanaryResult:
    """What happened: the verdict, the action taken and where the report is."""

    tag: str
    stable_model: str | None
    decision: str  # promote | rollback
    reason: str
    exit_code: int
    report: CanaryReport
    canary_replicas: list[str]
    stable_replicas: list[str]
    weights: dict[str, int]
    window_s: float
    traffic: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "stable_model": self.stable_model, "decision": self.decision, "reason": self.reason,
                "exit_code": self.exit_code, "analysis": self.report.to_dict(),
                "canary_replicas": self.canary_replicas, "stable_replicas": self.stable_replicas,
                "weights": self.weights, "window_s": self.window_s, "traffic": self.traffic.get("total", {})}


def weights_for(percent: float, n_stable: int, n_canary: int, base: int = 100) -> int:
    """HAProxy weight per canary replica so the canaries get ``percent`` of requests (stable at ``base``)."""
    if not 0 < percent < 100:
        raise ValueError("weight must be a percentage between 0 and 100")
    w = round(percent * base * n_stable / (n_canary * (100 - percent)))
    return max(1, min(256, w))


def _served(cluster: Cluster, names: list[str]) -> str | None:
    models = {r["model"] for r in cluster.status()["replicas"] if r["name"] in names}
    return models.pop() if len(models) == 1 else None


def warm_up(url: str, n: int = 200) -> None:
    """Direct requests to a freshly started replica before it takes live traffic.

    Measured: a cold replica answered at a median of 50 ms next to a warm one at 10-25 ms for the
    first ten seconds of a canary window, and as fast once warmed; a canary should judge the
    model, not the first seconds of a process (Argo's ``initialDelay`` serves the same purpose).
    """
    from botkit.core.data import load
    from botkit.serving.serve import post_json

    texts = [t for t, _ in load(None).val][:n]
    for text in texts:
        post_json(f"{url}/chat", {"message": text})


def _window(cluster: Cluster, canary: list[str], stable: list[str], duration_s: float, min_requests: int,
            traffic: Traffic | None) -> tuple[GroupSample, GroupSample, float, float]:
    """Snapshot, wait (at least ``duration_s``; up to 3x while the canary has too few requests), snapshot."""
    names = canary + stable
    urls = {s.name: s.url for s in cluster.specs}
    time.sleep(1.0)  # let the traffic reach its pace before the window opens
    t_open, before = time.time(), {n: scrape(urls[n]) for n in names}
    t0 = time.monotonic()
    while True:
        time.sleep(min(1.0, max(0.1, duration_s - (time.monotonic() - t0))))
        elapsed = time.monotonic() - t0
        if elapsed < duration_s:
            continue
        after = {n: scrape(urls[n]) for n in names}
        can = group_sample(delta(before[n], after[n]) for n in canary)
        if can.requests >= min_requests or elapsed >= 3 * duration_s:
            stab = group_sample(delta(before[n], after[n]) for n in stable)
            return stab, can, t_open, round(elapsed, 2)


def _rollback(cluster: Cluster, canary: list[str], stable_spec: str | None, log: AuditLog, tag: str,
              who: str | None, reason: str) -> None:
    """Weights to 0 first (no new request reaches the canary), then the stable model, then weights back."""
    for name in canary:
        cluster.set_weight(name, 0)
    log.record("rollback", who=who, subject=tag, details={"step": "canary weights 0", "replicas": canary,
                                                          "reason": reason})
    for name in canary:
        restart_on(cluster, name, stable_spec)
        cluster.set_weight(name, 100)
    log.record("rollback", who=who, subject=tag, details={"step": "canary replicas back on stable",
                                                          "model": stable_spec or "production",
                                                          "replicas": canary})


def _promote(cluster: Cluster, tag: str, stable: list[str], canary: list[str], reviewer: str | None,
             who: str | None, log: AuditLog, rollout: bool) -> tuple[bool, str]:
    """Through the promotion policy; then the stable replicas follow. (approved, reason)."""
    from botkit.core.registry import get_info, resolve_tag
    from botkit.ops.governance import promote

    resolved = resolve_tag(tag)
    if get_info(resolved)["stage"] == "production":
        log.record("canary", who=who, subject=resolved, details={"step": "promote", "note": "already production"})
    else:
        decision = promote(resolved, reviewer=reviewer, who=who, audit=log)
        if not decision.approved:
            failed = [r.name for r in decision.rules if not r.passed]
            return False, f"promotion policy rejected {resolved}: {', '.join(failed)}"
    for name in canary:
        cluster.set_weight(name, 100)
    if rollout:
        deploy(cluster, tag, replicas=stable, who=who, audit=log)
    return True, "promoted"


def run_canary(cluster: Cluster, tag: str, *, weight: float = 10, duration_s: float = 60, min_requests: int = 100,
               drill: str | None = None, canaries: int = 1, users: int = 8, feedback_prob: float = 0.5,
               reviewer: str | None = None, baseline: bool = True,
               who: str | None = None, rollout_on_promote: bool = True, out_dir: Path | None = None,
               audit: AuditLog | None = None) -> CanaryResult:
    """Canary ``tag`` on the last ``canaries`` replicas; analyse; promote or roll back (see module doc).

    ``feedback_prob``: share of answers the synthetic users rate (``down`` when the answer's intent
    is not the labelled one). It is what reveals a model that is wrong more often yet no less
    confident (measured: a model on a 16th of the data answers 30 % wrong vs 10 %, with the same
    fallback rate and confidence as production).

    ``baseline`` (Kayenta's design; needs at least ``2 * canaries + 1`` replicas): as many replicas
    as canaries are restarted on the *stable* model with the same weight and warm-up, and the
    canary is judged against them rather than against the long-running stable replicas. Measured
    without it: a fresh, lightly loaded replica of the *same* model answered 1.2-5x slower than the
    busy stable one within one window on a shared 2-core machine (1 rollback in 10 same-model runs).
    """
    if drill is not None and drill not in DRILLS:
        raise ValueError(f"unknown drill {drill!r}: expected one of {', '.join(DRILLS)}")
    if not 1 <= canaries < len(cluster.specs):
        raise ValueError(f"canaries must leave at least one stable replica (cluster has {len(cluster.specs)})")
    log = audit or AuditLog()
    out = settings.new_report_dir("canary", label=drill or "", out_dir=out_dir)
    names = [s.name for s in cluster.specs]
    canary = names[-canaries:]
    base = names[-2 * canaries:-canaries] if baseline and len(names) > 2 * canaries else []
    stable = names[:len(names) - len(canary) - len(base)]
    stable_model = _served(cluster, stable)
    stable_spec = cluster.replica(stable[0]).model  # None: the store's production model
    w = weights_for(weight * (2 if base else 1), len(stable), len(canary) + len(base))
    log.record("canary", who=who, subject=tag, details={"step": "start", "canary": canary, "baseline": base,
                                                        "stable": stable, "stable_model": stable_model,
                                                        "weight_percent": weight, "drill": drill,
                                                        "duration_s": duration_s})
    env = {"BOTKIT_FAULT_INJECTION": "true"} if drill else None
    for name in base + canary:
        cluster.set_weight(name, 0)
        restart_on(cluster, name, tag if name in canary else stable_spec, env if name in canary else None)
        warm_up(cluster.replica(name).url)
    for name in base + canary:
        cluster.set_weight(name, w)
    weights = {n: (w if n in canary + base else 100) for n in names}
    log.record("canary", who=who, subject=tag, details={"step": "weights", "weights": weights})
    traffic = Traffic(cluster.lb_url, users=users, headers=DRILLS.get(drill or ""), feedback_prob=feedback_prob,
                      out_dir=out / "traffic")
    with traffic:
        stab, can, t_open, window = _window(cluster, canary, base or stable, duration_s, min_requests, traffic)
    _attach_feedback(cluster, stab, can, tag, stable_model, t_open)
    report = analyse(stab, can, min_requests=min_requests)
    log.record("canary", who=who, subject=tag, details={"step": "analysis", "decision": report.decision,
                                                        "score": report.score, "reason": report.reason,
                                                        "window_s": window})
    decision, reason = report.decision, report.reason
    if decision == PROMOTE:
        ok, why = _promote(cluster, tag, stable + base, canary + base, reviewer, who, log, rollout_on_promote)
        if not ok:
            decision, reason = "rollback", why
    if decision != PROMOTE:
        _rollback(cluster, canary, stable_spec, log, tag, who, reason)
        for name in base:
            cluster.set_weight(name, 100)
    result = CanaryResult(tag, stable_model, decision, reason, EXIT_PROMOTED if decision == PROMOTE else
                          EXIT_ROLLED_BACK, report, canary, base or stable, weights, window, traffic.summary or {}, out)
    _write(result, stab, can, out)
    log.record("canary", who=who, subject=tag, details={"step": "done", "decision": decision, "reason": reason,
                                                        "report": str(out)})
    return result


def _attach_feedback(cluster: Cluster, stab: GroupSample, can: GroupSample, tag: str, stable_model: str | None,
                     since: float) -> None:
    """Negative feedback per group from the event stream; only attributable when the models differ."""
    from botkit.core.registry import resolve_tag

    canary_model = resolve_tag(tag)
    if not stable_model or stable_model == canary_model:
        return  # same model on both tracks: feedback cannot be told apart, the metric stays "nodata"
    time.sleep(0.5)  # the writers' last group commit
    by_model = feedback_by_model(cluster.redis_url, since)
    can.negative_feedback, can.feedback = by_model.get(canary_model, (0, 0))
    stab.negative_feedback, stab.feedback = by_model.get(stable_model, (0, 0))


def _write(result: CanaryResult, stab: GroupSample, can: GroupSample, out: Path) -> None:
    (out / "canary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    lines = [f"# Canary {result.tag}: **{result.decision}** (exit {result.exit_code})", "",
             f"- reason: {result.reason}", f"- score: {result.report.score} (promote at >= {result.report.threshold})",
             f"- compared with {result.stable_replicas} on {result.stable_model}; canary {result.canary_replicas}; "
             f"weights {result.weights}; window {result.window_s} s", "",
             "| metric | verdict | stable | canary | effect | p | test | n stable | n canary |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    lines += [f"| {m.name} | {m.verdict} | {m.stable:.4g} | {m.canary:.4g} | {m.effect:.4g} | {m.p_value:.3g} | "
              f"{m.test} | {m.n_stable} | {m.n_canary} |" for m in result.report.metrics]
    lines += ["", *[f"- {m.name}: {m.reason}" for m in result.report.metrics]]
    (out / "canary.md").write_text("\n".join(lines) + "\n")
    _plot(result, stab, can, out / "canary.png")


def _plot(result: CanaryResult, stab: GroupSample, can: GroupSample, path: Path) -> None:
    """One panel per metric: the two rates side by side, latency and confidence as distributions."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 5)
    verdict = {m.name: m.verdict for m in result.report.metrics}
    rates = [("error_rate", stab.counts("error_rate"), can.counts("error_rate")),
             ("fallback_rate", stab.counts("fallback_rate"), can.counts("fallback_rate")),
             ("negative_feedback_rate", stab.counts("negative_feedback_rate"), can.counts("negative_feedback_rate"))]
    for ax, (name, s, c) in zip(axes[:3], rates, strict=True):
        vals = [s[0] / s[1] if s[1] else 0.0, c[0] / c[1] if c[1] else 0.0]
        ax.bar(["stable", "canary"], vals, color=["#4c78a8", "#f58518"])
        ax.set_ylim(0, max(0.01, *vals) * 1.25)
        ax.set_title(f"{name}\n{verdict.get(name)}", fontsize=9)
    for ax, name, s, c, unit in ((axes[3], "latency_ms", stab.latencies_ms, can.latencies_ms, "ms"),
                                 (axes[4], "confidence", stab.confidences, can.confidences, "")):
        for data, label, color in ((s, "stable", "#4c78a8"), (c, "canary", "#f58518")):
            if data:
                xs = np.sort(np.asarray(data))
                ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", label=label, color=color)
        ax.set_title(f"{name} (CDF)\n{verdict.get(name)}", fontsize=9)
        ax.set_xlabel(unit)
        if name == "latency_ms":
            ax.set_xscale("log")
        ax.legend(fontsize=7)
    fig.suptitle(f"canary {result.tag}: {result.decision} (score {result.report.score})", fontsize=10)
    fig.savefig(path, dpi=90)

