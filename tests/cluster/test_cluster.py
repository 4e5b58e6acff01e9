"""A running cluster: status, one event store for every replica, the dashboard, the drills, and down."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import jsonschema
import pytest

from botkit.ops.cluster import Cluster, cluster_processes
from botkit.ops.cluster.dashboard import SCHEMA, dashboard, queries
from botkit.ops.cluster.drills import run_drill

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_status_json_names_the_balancer_every_replica_redis_and_prometheus(cluster: Cluster) -> None:
    out = subprocess.run([sys.executable, "-m", "botkit", "cluster", "status", "--json", "--dir",
                          str(cluster.directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["lb_url"] == cluster.lb_url and status["redis_url"] == cluster.redis_url
    assert status["prometheus_url"] == cluster.prometheus_url
    replicas = status["replicas"]
    assert [r["name"] for r in replicas] == ["replica-1", "replica-2", "replica-3"]
    for r in replicas:
        assert r["healthy"] and r["pid"] and r["model"] == cluster.model and r["url"].startswith("http://127.0.0.1:")
        assert r["lb_status"] == "UP"
    assert httpx.get(f"{cluster.lb_url}/readyz", timeout=5).status_code == 200


def test_feedback_on_any_replicas_answer_is_accepted_through_haproxy(cluster: Cluster) -> None:
    before = {n: s.total_sessions for n, s in cluster.haproxy.servers().items()}
    codes = []
    # A new connection per request: HAProxy's round robin sends each feedback to another replica
    # than the one that answered the chat.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=cluster.lb_url, timeout=10, limits=limits) as c:
        for i in range(100):
            chat = c.post("/chat", json={"message": f"where is my order number {i}"})
            assert chat.status_code == 200, chat.text
            fb = c.post("/feedback", json={"request_id": chat.json()["request_id"], "rating": "up"})
            codes.append(fb.status_code)
    assert codes.count(200) == 100, codes
    served = {n: s.total_sessions - before.get(n, 0) for n, s in cluster.haproxy.servers().items()}
    assert all(n >= 40 for n in served.values()), served  # 200 requests spread over all three


def test_replicas_answer_feedback_for_each_others_chats_directly(cluster: Cluster) -> None:
    a, b = cluster.specs[0].url, cluster.specs[1].url
    rid = httpx.post(f"{a}/chat", json={"message": "refund please"}, timeout=10).json()["request_id"]
    assert httpx.post(f"{b}/feedback", json={"request_id": rid, "rating": "down"}, timeout=10).status_code == 200


def test_dashboard_matches_its_schema_and_prometheus_accepts_every_query(cluster: Cluster) -> None:
    doc = json.loads((cluster.directory / "grafana" / "botkit-cluster.json").read_text())
    assert doc == dashboard()
    jsonschema.validate(doc, SCHEMA)
    exprs = queries(doc)
    assert len(exprs) >= 15
    with httpx.Client(base_url=cluster.prometheus_url, timeout=10) as prom:
        for expr in exprs:
            r = prom.get("/api/v1/query", params={"query": expr})
            assert r.status_code == 200 and r.json()["status"] == "success", (expr, r.text)
        r = prom.get("/api/v1/query", params={"query": "not a (query"})
        assert r.status_code == 400  # the check can fail
        targets = prom.get("/api/v1/targets").json()["data"]["activeTargets"]
    jobs = sorted(t["labels"]["job"] for t in targets)
    assert jobs == ["botkit", "botkit", "botkit", "haproxy"]


def test_kill_9_of_a_replica_fails_no_request_and_loses_no_acknowledged_chat(cluster: Cluster, tmp_path) -> None:
    figures = run_drill(cluster, "kill", users=8, duration_s=15, warmup_s=3, out_dir=tmp_path)
    assert figures["acked_chats"] > 100, figures
    assert figures["failed_requests"] == 0, figures
    assert figures["acked_not_stored"] == 0, figures
    assert figures["new_pid"] and figures["new_pid"] != figures["killed_pid"], figures
    assert figures["targets_met"], figures["targets"]


def test_redis_down_answers_200_or_503_with_retry_after_and_loses_nothing(cluster: Cluster, tmp_path) -> None:
    figures = run_drill(cluster, "redis-down", users=8, duration_s=12, fault_s=4, warmup_s=3, out_dir=tmp_path)
    assert figures["http_500"] == 0 and figures["failed_requests"] == 0, figures
    assert figures["http_503"] > 0 and figures["http_503_without_retry_after"] == 0, figures
    assert figures["acked_not_stored"] == 0, figures
    assert figures["recovered_s"] is not None, figures
    assert figures["targets_met"], figures["targets"]


def test_redis_hang_keeps_chat_p99_under_a_second(cluster: Cluster, tmp_path) -> None:
    figures = run_drill(cluster, "redis-hang", users=8, duration_s=12, fault_s=4, warmup_s=3, out_dir=tmp_path)
    assert figures["http_503"] > 0, figures  # the fault was real: the store could not take events
    assert figures["p99_ms"] < 1000, figures
    assert figures["http_500"] == 0 and figures["acked_not_stored"] == 0, figures
    assert figures["targets_met"], figures["targets"]


def test_down_leaves_no_process_running(cluster: Cluster) -> None:
    pids = [r["pid"] for r in cluster.status()["replicas"]] + [s["pid"] for s in cluster.status()["services"]]
    assert len(cluster_processes(cluster.directory)) >= 5
    out = subprocess.run([sys.executable, "-m", "botkit", "cluster", "down", "--dir", str(cluster.directory)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "had to kill" not in out.stdout, out.stdout  # supervisord stopped everything itself
    import psutil

    assert cluster_processes(cluster.directory) == []
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{cluster.lb_url}/readyz", timeout=2)
