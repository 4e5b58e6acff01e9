"""Safe releases on a real cluster (supervisord, HAProxy, Redis, BentoML replicas on loopback).

One three-replica cluster for the module, driven the way an operator would: a rolling update under
Locust load through HAProxy, then canaries through the ``botkit cluster canary`` command, whose
exit code is the decision (0 promoted, 3 rolled back). Windows are short (6 s at a 20 % canary):
the statistics compare canary and stable in the same seconds, so the noise of a shared machine
hits both groups alike.
"""

from __future__ import annotations

import json
import shutil

import pytest

from botkit.core.config import settings

pytestmark = pytest.mark.skipif(not all(shutil.which(b) for b in ("haproxy", "redis-server")),
                                reason="haproxy and redis-server (Debian) are needed: make sysdeps")

WINDOW = ["--weight", "20", "--duration", "6", "--min-requests", "80", "--users", "8", "--feedback-prob", "1",
          "--reviewer", "tests", "--no-rollout"]


@pytest.fixture(scope="module")
def models(bot_tag: str) -> dict[str, str]:
    """``prod``: the production bot; ``bad``: the same recipe on a 16th of the data (the old release):
    30 % wrong answers against 10 %, with production's fallback rate and confidence."""
    from botkit.ops.releases.candidates import train_subsampled

    return {"prod": bot_tag, "bad": train_subsampled(1 / 16)}


@pytest.fixture(scope="module")
def cluster(models, tmp_path_factory):
    """Three replicas serving the old (bad) release (stable, baseline, canary); the rollout test moves
    them to production."""
    from botkit.ops.cluster import Cluster

    c = Cluster(replicas=3, workers=1, model=models["bad"], prometheus=False,
                directory=tmp_path_factory.mktemp("releases"))
    c.start()
    try:
        yield c
    finally:
        left = c.stop()
        assert left == []


def _canary(cluster, tag: str, *extra: str) -> tuple[int, dict]:
    from botkit.cli import main

    out = settings.home / "canary-out.json"
    code = main(["cluster", "canary", tag, "--dir", str(cluster.directory), *WINDOW, "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def _served(cluster) -> dict[str, str]:
    return {r["name"]: r["model"] for r in cluster.status()["replicas"]}


def test_rolling_update_under_load_fails_no_request(cluster, models):
    from botkit.ops.releases.rollout import deploy
    from botkit.ops.releases.traffic import Traffic

    with Traffic(cluster.lb_url, users=8, feedback_prob=0.0) as traffic:
        import time

        time.sleep(1.0)
        result = deploy(cluster, models["prod"])
        time.sleep(1.0)
    total = traffic.summary["total"]
    assert total["requests"] > 200, total
    assert total["failures"] == 0, total
    assert [s.replica for s in result.steps] == ["replica-1", "replica-2", "replica-3"]
    assert set(_served(cluster).values()) == {models["prod"]}


def test_canary_with_injected_latency_rolls_back(cluster, models):
    code, res = _canary(cluster, models["prod"], "--drill", "latency")
    verdicts = {m["name"]: m["verdict"] for m in res["analysis"]["metrics"]}
    assert (code, res["decision"], verdicts["latency_ms"]) == (3, "rollback", "fail"), res["reason"]
    assert set(_served(cluster).values()) == {models["prod"]}


def test_canary_with_injected_errors_rolls_back(cluster, models):
    code, res = _canary(cluster, models["prod"], "--drill", "errors")
    verdicts = {m["name"]: m["verdict"] for m in res["analysis"]["metrics"]}
    assert (code, res["decision"], verdicts["error_rate"]) == (3, "rollback", "fail"), res["reason"]


def test_canary_of_a_worse_model_rolls_back_and_restores_production(cluster, models):
    code, res = _canary(cluster, models["bad"])
    assert (code, res["decision"]) == (3, "rollback"), res
    failed = {m["name"] for m in res["analysis"]["metrics"] if m["verdict"] == "fail"}
    assert failed & {"fallback_rate", "confidence", "negative_feedback_rate"}, res["analysis"]
    assert set(_served(cluster).values()) == {models["prod"]}
    assert all(w == 100 for w in (r["weight"] for r in cluster.status()["replicas"]))


def test_canary_of_the_production_model_promotes_with_a_plot_and_audit_trail(cluster, models):
    from botkit.ops.governance import AuditLog

    code, res = _canary(cluster, models["prod"])
    assert (code, res["decision"]) == (0, "promote"), res
    report = settings.reports_dir / "canary"
    assert any(report.glob("*/canary.png")) and any(report.glob("*/canary.md"))
    steps = [e["details"].get("step") for e in AuditLog().entries() if e["action"] == "canary"
             and e["subject"] == models["prod"]]
    assert {"start", "weights", "analysis", "done"} <= set(steps)
