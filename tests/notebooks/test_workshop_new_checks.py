"""The checks of exercises 01 (the floor as a decision), 06 (PSI by hand) and 07 (deploy): right, wrong, missing.

Each wrong answer must get a hint that points at the mistake without printing the answer; no input
makes a check raise. The figures they compare with come from botkit's own functions, never typed in.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from botkit.core import drift
from botkit.ops import capacity, k8s
from botkit.teaching import workshop

REASON = ("Customer service signs this floor: a wrong answer costs a support ticket, a fallback only a "
          "rephrase, so we accept fewer errors than fallbacks.")


def test_floor_decision_wants_a_number_an_owner_and_a_cost() -> None:
    assert "Start from the cost" in workshop.check_floor_decision(..., ...).message
    assert not workshop.check_floor_decision(0.3, REASON)
    assert not workshop.check_floor_decision(0.995, REASON)
    assert "12+ words" in workshop.check_floor_decision(0.85, "business said so").message
    no_cost = "The product owner decided this number after a long meeting with the whole team last week."
    assert "costs" in workshop.check_floor_decision(0.85, no_cost).message
    no_owner = "A wrong answer costs a ticket and a fallback costs a rephrase, so eighty five percent is fine here."
    assert "who decides" in workshop.check_floor_decision(0.85, no_owner).message
    ok = workshop.check_floor_decision(0.85, REASON, {"in_scope_accuracy": 0.9, "n_in_scope": 200})
    assert ok and f"{1 / 200:.3f}" in ok.message
    german = ("Der Kundenservice entscheidet: eine falsche Antwort kostet ein Ticket, eine Rückfrage kostet "
              "fast nichts, deshalb diese Untergrenze.")
    assert workshop.check_floor_decision(0.85, german)


def _report(ref: list[str], cur: list[str]) -> SimpleNamespace:
    checks = {c.name: c for c in drift.intent_distribution(ref, cur)}
    return SimpleNamespace(sample=SimpleNamespace(intents=tuple(ref)), window=SimpleNamespace(intents=cur),
                           check=checks.__getitem__, flagged=lambda name: checks[name].flagged,
                           notes={"intent_psi": {"noise_floor_p99": 0.05}})


REF = ["refund"] * 40 + ["order_status"] * 50 + ["greeting"] * 10
CUR = ["refund"] * 20 + ["order_status"] * 30 + ["oos"] * 50  # greeting lost, oos new


def _psi(eps=1e-4, log=math.log, shares=True, labels=None) -> float:
    ref, cur = Counter(REF), Counter(CUR)
    n_ref, n_cur = (len(REF), len(CUR)) if shares else (1, 1)
    total = 0.0
    for k in labels or sorted(set(ref) | set(cur)):
        e, a = ref[k] / n_ref, cur[k] / n_cur
        if eps:
            e, a = max(e, eps), max(a, eps)
        elif 0 in (a, e):
            continue
        total += (a - e) * log(a / e)
    return total


def test_psi_by_hand_matches_the_monitor_and_names_each_usual_mistake() -> None:
    report = _report(REF, CUR)
    assert workshop.check_psi_by_hand(_psi(), report)
    assert "no PSI yet" in workshop.check_psi_by_hand(..., report).message
    assert "floor their share at 0.0001" in workshop.check_psi_by_hand(_psi(eps=0), report).message
    assert "natural logarithm" in workshop.check_psi_by_hand(_psi(log=math.log10), report).message
    assert "counts" in workshop.check_psi_by_hand(_psi(shares=False), report).message
    assert "window's intents only" in workshop.check_psi_by_hand(_psi(labels=sorted(set(CUR))), report).message
    assert "not a number" in workshop.check_psi_by_hand(float("inf"), report).message
    wrong = workshop.check_psi_by_hand(_psi() * 1.5, report)
    assert not wrong and f"{_psi():.4f}" not in wrong.message  # the hint never prints the answer


def test_psi_reading_follows_the_bands_and_mentions_the_noise() -> None:
    report = _report(REF, CUR)
    band = "act" if _psi() > 0.2 else "watch" if _psi() > 0.1 else "stable"
    assert "Sampling alone" in workshop.check_psi_reading(band, report).message
    assert not workshop.check_psi_reading(next(b for b in workshop.PSI_READINGS if b != band), report)
    assert not workshop.check_psi_reading("panic", report) and not workshop.check_psi_reading(..., report)
    same = _report(REF, list(REF))
    assert workshop.check_psi_reading("stable", same)


def test_replicas_want_an_estimate_that_carries_the_load_then_the_plan() -> None:
    plan = capacity.plan(1200, 500, 400, service_time_ms=8)
    floor = math.ceil(1200 / 500)
    assert "by hand" in workshop.check_replicas(..., plan, target_rps=1200, per_replica_rps=500).message
    assert "below the target" in workshop.check_replicas(floor - 1, plan, target_rps=1200,
                                                         per_replica_rps=500).message
    assert "queueing model" in workshop.check_replicas(floor, ..., target_rps=1200, per_replica_rps=500).message
    ok = workshop.check_replicas(floor, plan, target_rps=1200, per_replica_rps=500)
    assert ok and f"plan says {plan.replicas}" in ok.message


def test_manifests_must_carry_the_plan(tmp_path: Path) -> None:
    plan = capacity.plan(1200, 500, 400, service_time_ms=8)
    b = plan.hpa()
    right = k8s.write(k8s.K8sSettings(replicas=plan.replicas, min_replicas=b["min_replicas"],
                                      max_replicas=b["max_replicas"]), tmp_path / "right")
    assert workshop.check_manifests(right, plan)
    default = k8s.write(k8s.K8sSettings(replicas=plan.replicas), tmp_path / "default")
    assert "autoscaler runs" in workshop.check_manifests(default, plan).message
    assert "which K8sSettings field" in workshop.check_manifests(
        k8s.write(k8s.K8sSettings(replicas=1), tmp_path / "one"), plan).message
    assert not workshop.check_manifests(..., plan) and not workshop.check_manifests([tmp_path / "x.yaml"], plan)


class _Probe(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/livez", "/readyz") else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_kubelet_probe_reads_the_path_from_the_manifest_and_the_reading_is_checked(tmp_path: Path) -> None:
    deployment = k8s.write(k8s.K8sSettings(), tmp_path)[0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        good = workshop.kubelet_probe(deployment, url, "readiness")
        deployment.write_text(deployment.read_text().replace("path: /readyz", "path: /ready"))
        bad = workshop.kubelet_probe(deployment, url, "readiness")
        alive = workshop.kubelet_probe(deployment, url, "liveness")
    finally:
        server.shutdown()
        server.server_close()
    assert good.ok and alive.ok and not bad.ok
    assert bad.status == 404 and "Readiness probe failed: HTTP probe failed with statuscode: 404" in str(bad)
    assert "still passes" in workshop.check_probe_reading(good, "x").message
    assert "Now write what Kubernetes does" in workshop.check_probe_reading(bad, ...).message
    assert "does not restart" in workshop.check_probe_reading(bad, "the pod is restarted").message
    assert workshop.check_probe_reading(bad, "no traffic: it is taken out of the Service's endpoints")
    assert not workshop.check_probe_reading(None, "x")


@pytest.mark.parametrize("fn", [workshop.check_floor_decision, workshop.check_psi_by_hand, workshop.check_psi_reading,
                                workshop.check_manifests, workshop.check_probe_reading])
def test_no_new_check_ever_raises(fn) -> None:
    for args in [(object(), object()), (1, 2), ("a", None), (float("nan"), {})]:
        assert isinstance(fn(*args), workshop.CheckResult)
