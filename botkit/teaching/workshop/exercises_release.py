"""Checks for exercises 06 (open the box: PSI by hand) and 07 (deploy: replicas, manifests, a broken probe).

Same contract as every exercise check: a :class:`CheckResult` that never raises. The hints
diagnose the usual wrong turns (counts instead of shares, a missing floor for empty bins, the
wrong logarithm, ignoring queueing) without printing the answer.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botkit.teaching.workshop.checks import CheckResult, _safe, done, is_todo, not_yet

__all__ = ["PSI_READINGS", "ProbeResult", "check_manifests", "check_probe_reading", "check_psi_by_hand",
           "check_psi_reading", "check_replicas", "kubelet_probe"]

PSI_READINGS = ("stable", "watch", "act")
_EPS = 1e-4  # the floor botkit.core.drift gives empty bins


# --------------------------------------------------------------------- exercise 06: PSI by hand


def _psi(ref: Mapping[str, float], cur: Mapping[str, float], *, eps: float | None = _EPS, log=math.log,
         shares: bool = True, labels: Sequence[str] | None = None) -> float:
    """PSI computed one of the ways a participant might: for diagnosing a wrong answer."""
    labels = list(labels) if labels is not None else sorted(set(ref) | set(cur))
    n_ref, n_cur = (sum(ref.values()), sum(cur.values())) if shares else (1, 1)
    total = 0.0
    for k in labels:
        e, a = ref.get(k, 0) / n_ref, cur.get(k, 0) / n_cur
        if eps is not None:
            e, a = max(e, eps), max(a, eps)
        elif a == 0 or e == 0:
            continue  # what "skip the intents that break the logarithm" gives
        total += (a - e) * log(a / e)
    return total


def _report_counts(report: Any) -> tuple[Counter, Counter]:
    return Counter(report.sample.intents), Counter(report.window.intents)


@_safe("PSI by hand")
def check_psi_by_hand(my_psi: Any, report: Any) -> CheckResult:
    """Does the participant's PSI match the monitor's ``intent_psi`` for the same window?"""
    step = "PSI by hand"
    if is_todo(my_psi):
        return not_yet(step, "no PSI yet: for every intent take its share in the reference and in the window, "
                             "then add up (share in window - share in reference) * ln(window share / reference "
                             "share)")
    if not isinstance(my_psi, int | float) or isinstance(my_psi, bool):
        return not_yet(step, f"my_psi should be one number, got {type(my_psi).__name__}")
    target = report.check("intent_psi").value
    if math.isclose(my_psi, target, rel_tol=1e-6, abs_tol=1e-9):
        return done(step, f"your PSI {my_psi:.4f} is the monitor's intent_psi {target:.4f}: you know what the "
                          "alert computes")
    if not math.isfinite(my_psi):
        return not_yet(step, f"your PSI is {my_psi}: an intent that appears on one side only has share 0, and "
                             "ln(0) is not a number. The monitor floors every share at 0.0001 (0.01 %) first")
    ref, cur = _report_counts(report)
    diagnoses = [
        (dict(eps=None), "you skipped the intents missing on one side: they moved most of all; floor their "
                         "share at 0.0001 as the monitor does"),
        (dict(log=math.log10), "you used log base 10: PSI uses the natural logarithm (math.log / np.log)"),
        (dict(log=math.log2), "you used log base 2: PSI uses the natural logarithm (math.log / np.log)"),
        (dict(shares=False), "you used counts: turn each side into shares first (divide by that side's total)"),
        (dict(labels=sorted(set(cur))), "you summed over the window's intents only: an intent the window lost "
                                        "moved too, sum over the intents of both sides"),
        (dict(labels=sorted(set(ref))), "you summed over the reference's intents only: an intent that is new "
                                        "in the window moved too, sum over the intents of both sides"),
    ]
    for kwargs, hint in diagnoses:
        with_mistake = _psi(ref, cur, **kwargs)
        if math.isfinite(with_mistake) and math.isclose(my_psi, with_mistake, rel_tol=1e-6, abs_tol=1e-9):
            return not_yet(step, f"close, but {hint}")
    return not_yet(step, f"your PSI {my_psi:.4g} is not the monitor's value (it is of the order of "
                         f"{10 ** math.floor(math.log10(target)) if target > 0 else 0:g}). Print your shares for two "
                         "intents and check: both sides sum to 1? every intent of both sides included?")


@_safe("PSI reading")
def check_psi_reading(reading: Any, report: Any) -> CheckResult:
    """The participant's reading of the PSI: stable / watch / act, and is it above sampling noise?"""
    step = "PSI reading"
    if is_todo(reading):
        return not_yet(step, f"read your number: one of {', '.join(map(repr, PSI_READINGS))} (the cheat sheet has "
                             "the usual thresholds)")
    text = str(reading).strip().lower()
    if text not in PSI_READINGS:
        return not_yet(step, f"reading must be one of {', '.join(map(repr, PSI_READINGS))}, got {reading!r}")
    psi = report.check("intent_psi").value
    expected = "act" if psi > 0.2 else "watch" if psi > 0.1 else "stable"
    if text != expected:
        return not_yet(step, f"{text!r} does not fit a PSI of {psi:.3f}: where does it fall among the usual "
                             "thresholds 0.1 and 0.2?")
    floor = ((report.notes or {}).get("intent_psi") or {}).get("noise_floor_p99")
    noise = (f" Sampling alone reaches {floor:.3f} at this window size (99th percentile), so the monitor "
             f"{'also flags it' if report.flagged('intent_psi') else 'does not flag it'}.") if floor else ""
    return done(step, f"{text}: PSI {psi:.3f}.{noise}")


# ------------------------------------------------------------------- exercise 07: deploy


@_safe("replicas")
def check_replicas(my_estimate: Any, plan: Any, *, target_rps: float, per_replica_rps: float) -> CheckResult:
    """A back-of-the-envelope replica count first, then the queueing plan; explain the difference."""
    step = "replicas"
    if is_todo(my_estimate):
        return not_yet(step, "estimate first, by hand: how many replicas, each answering per_replica_rps at most, "
                             "carry target_rps? Round the right way")
    if not isinstance(my_estimate, int) or isinstance(my_estimate, bool) or my_estimate < 1:
        return not_yet(step, f"my_estimate is a whole number of replicas, got {my_estimate!r}")
    floor = math.ceil(target_rps / per_replica_rps)
    if my_estimate < floor:
        return not_yet(step, f"{my_estimate} replicas answer at most {my_estimate * per_replica_rps:g} requests/s, "
                             f"below the target {target_rps:g}: at least how many are needed, before any queueing?")
    if is_todo(plan):
        return not_yet(step, "now ask the queueing model: botkit.ops.capacity has a function that turns the target, "
                             "the measured capacity per replica and the p95 SLO into a plan")
    if not hasattr(plan, "replicas"):
        return not_yet(step, f"expected the Plan that capacity returns, got {type(plan).__name__}")
    gap = plan.replicas - my_estimate
    why = ("the plan keeps headroom and bounds the p95 wait in the queue: replicas at 100 % busy "
           "make every request wait" if gap > 0 else
           "your estimate already covers the plan's headroom" if gap == 0 else
           "your estimate is above the plan: you pay for replicas the SLO does not need (or you expect a peak)")
    return done(step, f"you estimated {my_estimate}, the plan says {plan.replicas} (utilisation "
                      f"{plan.utilisation:.0%}, predicted p95 {plan.predicted_p95_ms:.0f} ms): {why}")


@_safe("manifests")
def check_manifests(paths: Any, plan: Any) -> CheckResult:
    """Rendered manifests whose Deployment and HPA carry the plan's numbers."""
    import yaml

    step = "manifests"
    if is_todo(paths):
        return not_yet(step, "render the manifests: botkit.ops.k8s writes them from a K8sSettings; give it the "
                             "plan's replica counts (Plan.hpa() has the autoscaler bounds)")
    files = {Path(p).name: Path(p) for p in paths}
    if "deployment.yaml" not in files or "hpa.yaml" not in files:
        return not_yet(step, f"expected deployment.yaml and hpa.yaml among the files, got {sorted(files)}")
    dep = yaml.safe_load(files["deployment.yaml"].read_text(encoding="utf-8"))
    hpa = yaml.safe_load(files["hpa.yaml"].read_text(encoding="utf-8"))
    bounds = plan.hpa()
    if dep["spec"]["replicas"] != plan.replicas:
        return not_yet(step, f"the Deployment asks for {dep['spec']['replicas']} replicas, your plan for "
                             f"{plan.replicas}: which K8sSettings field sets it?")
    lo, hi = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    if (lo, hi) != (bounds["min_replicas"], bounds["max_replicas"]):
        return not_yet(step, f"the autoscaler runs {lo}-{hi} replicas, the plan wants {bounds['min_replicas']}-"
                             f"{bounds['max_replicas']}: the HPA would scale below the plan, or not up to the peak")
    return done(step, f"Deployment {plan.replicas} replicas, HPA {lo}-{hi}: the manifests say what the plan says")


@dataclass(frozen=True)
class ProbeResult:
    """What a kubelet would see when it probes a pod as the manifest says."""

    kind: str
    path: str
    status: int | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__


def kubelet_probe(deployment: str | Path, url: str, kind: str = "readiness") -> ProbeResult:
    """Probe a running service the way the kubelet would, reading path from the Deployment's ``<kind>Probe``.

    The port comes from ``url`` (a local server stands in for the pod). The message imitates the
    kubelet's event text, which is what ``kubectl describe pod`` shows when a probe fails.
    """
    import yaml

    dep = yaml.safe_load(Path(deployment).read_text(encoding="utf-8"))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    probe = container.get(f"{kind}Probe") or {}
    path = ((probe.get("httpGet") or {}).get("path")) or "/"
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=5) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return ProbeResult(kind, path, None, f"Warning  Unhealthy  {kind.capitalize()} probe failed: Get "
                                             f"\"http://<pod-ip>{path}\": {exc}")
    if 200 <= status < 400:
        return ProbeResult(kind, path, status, f"{kind} probe GET {path}: {status} (passes)")
    return ProbeResult(kind, path, status, f"Warning  Unhealthy  {kind.capitalize()} probe failed: HTTP probe "
                                           f"failed with statuscode: {status} (GET {path})")


_CONSEQUENCE = {
    "readiness": (("endpoint", "traffic", "service", "not ready", "no requests", "removed", "unready"),
                  ("restart", "kill")),
    "liveness": (("restart", "kill", "crashloop", "crash loop"), ()),
}


@_safe("probe")
def check_probe_reading(probe: Any, consequence: Any) -> CheckResult:
    """A broken probe was seen failing, and the participant says what Kubernetes then does to the pod."""
    step = "probe"
    if is_todo(probe):
        return not_yet(step, "break a probe first: change its path in deployment.yaml, then probe the running "
                             "service as the kubelet would (workshop.kubelet_probe)")
    if not isinstance(probe, ProbeResult):
        return not_yet(step, f"expected what workshop.kubelet_probe returns, got {type(probe).__name__}")
    if probe.ok:
        return not_yet(step, f"the {probe.kind} probe on {probe.path} still passes: point it at a route the "
                             "service does not have and render the probe again")
    if is_todo(consequence):
        return not_yet(step, f"the {probe.kind} probe fails ({probe.status}). Now write what Kubernetes does with "
                             "this pod: read the comment above the probe in deployment.yaml")
    text = str(consequence).lower()
    wanted, wrong = _CONSEQUENCE.get(probe.kind, ((), ()))
    if any(w in text for w in wrong) and not any(w in text for w in wanted):
        return not_yet(step, f"a failing {probe.kind} probe does not restart anything: which probe restarts, and "
                             "what does this one decide?")
    if not any(w in text for w in wanted):
        return not_yet(step, f"say what the failing {probe.kind} probe changes for the pod (traffic? restarts?); "
                             "the comment above each probe in deployment.yaml tells")
    return done(step, f"{probe.kind} probe fails with {probe.status} on {probe.path}; you said: {consequence}")
