"""The cluster's Grafana dashboard, built here so the JSON and its PromQL have one source.

``botkit cluster up`` writes it (with Grafana provisioning files pointing at the cluster's
Prometheus) into the cluster folder; ``deploy/grafana/botkit-cluster.json`` is the same JSON for
a real Grafana (``python -m botkit.ops.cluster.dashboard deploy/grafana`` rewrites it). The tests
check it against :data:`SCHEMA` and send every panel's query to a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["PANELS", "SCHEMA", "dashboard", "queries", "write"]

_CHAT = 'endpoint=~"/chat|/chat_batch|/feedback"'


def _q(quantile: float, metric: str, by: str = "le", window: str = "1m", where: str = "") -> str:
    return f"histogram_quantile({quantile}, sum by ({by}) (rate({metric}_bucket{where}[{window}])))"


#: (title, unit, [(PromQL, legend)]): one panel each, in reading order.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Requests per second by replica", "reqps",
     [(f"sum by (replica) (rate(bentoml_service_request_total{{{_CHAT}}}[1m]))", "{{replica}}")]),
    ("Requests per second at HAProxy", "reqps",
     [('sum(rate(haproxy_frontend_http_requests_total{proxy="botkit"}[1m]))', "frontend")]),
    ("/chat latency p50 / p95 / p99", "s",
     [(_q(q, "bentoml_service_request_duration_seconds", where='{endpoint="/chat"}'), f"p{int(q * 100)}")
      for q in (0.5, 0.95, 0.99)]),
    ("Server errors (5xx) by code", "reqps",
     [('sum by (http_response_code) (rate(bentoml_service_request_total{http_response_code=~"5.."}[1m]))',
       "{{http_response_code}}")]),
    ("503s: not ready or event not stored", "reqps",
     [('sum(rate(bentoml_service_request_total{http_response_code="503"}[1m]))', "503 from replicas"),
      ("sum by (endpoint) (rate(botkit_events_unavailable_total[1m]))", "not stored {{endpoint}}"),
      ('sum(rate(haproxy_backend_http_responses_total{proxy="replicas", code="5xx"}[1m]))', "5xx at HAProxy")]),
    ("Intent mix", "reqps", [("sum by (intent) (rate(botkit_chat_requests_total[5m]))", "{{intent}}")]),
    ("Fallback rate", "percentunit",
     [("sum(rate(botkit_chat_fallbacks_total[5m])) / sum(rate(botkit_chat_requests_total[5m]))", "fallback")]),
    ("Confidence p10 / p50", "percentunit",
     [(_q(q, "botkit_chat_confidence", window="5m"), f"p{int(q * 100)}") for q in (0.1, 0.5)]),
    ("Drift checks flagged", "short", [("max by (check) (botkit_drift_flagged)", "{{check}}")]),
    ("Feedback by rating", "reqps", [("sum by (rating) (rate(botkit_feedback_total[5m]))", "{{rating}}")]),
    ("Events queued / dropped / retried", "short",
     [("sum by (replica) (botkit_events_queued)", "queued {{replica}}"),
      ("sum(increase(botkit_events_dropped_total[5m]))", "dropped (5m)"),
      ("sum(increase(botkit_events_retries_total[5m]))", "failed writes (5m)")]),
    ("Event group commit p99", "s", [(_q(0.99, "botkit_events_write_seconds"), "p99 commit")]),
    ("Replicas up (HAProxy checks)", "short",
     [('sum(haproxy_backend_active_servers{proxy="replicas"})', "active"),
      ('sum(haproxy_server_status{proxy="replicas", state="UP"})', "UP")]),
]

#: The part of Grafana's dashboard model that a provisioned dashboard must have.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "time", "templating"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "time": {"type": "object", "required": ["from", "to"]},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "type", "title", "gridPos", "datasource", "targets"],
            "properties": {
                "id": {"type": "integer"}, "type": {"enum": ["timeseries", "stat", "gauge", "table"]},
                "gridPos": {"type": "object", "required": ["h", "w", "x", "y"],
                            "properties": {k: {"type": "integer", "minimum": 0} for k in "hwxy"}},
                "targets": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["refId", "expr"],
                    "properties": {"expr": {"type": "string", "minLength": 1}}}}}}},
    },
}


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (two panels a row, a Prometheus data source variable)."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title, "datasource": datasource,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend, "datasource": datasource}
                        for j, (expr, legend) in enumerate(targets)]})
    return {
        "title": "botkit cluster", "uid": "botkit-cluster", "schemaVersion": 39, "version": 1, "editable": True,
        "tags": ["botkit"], "refresh": "5s", "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


def queries(doc: dict[str, Any] | None = None) -> list[str]:
    """Every PromQL expression of the dashboard."""
    doc = doc or dashboard()
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def write(directory: Path, prometheus_url: str | None = None) -> Path:
    """``botkit-cluster.json`` in ``directory``; with ``prometheus_url`` also Grafana provisioning
    files (data source + dashboard provider) under ``directory/provisioning``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "botkit-cluster.json"
    path.write_text(json.dumps(dashboard(), indent=1) + "\n")
    if prometheus_url:
        prov = directory / "provisioning"
        (prov / "datasources").mkdir(parents=True, exist_ok=True)
        (prov / "dashboards").mkdir(parents=True, exist_ok=True)
        (prov / "datasources" / "botkit.yml").write_text(
            "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    type: prometheus\n    access: proxy\n"
            f"    url: {prometheus_url}\n    isDefault: true\n")
        (prov / "dashboards" / "botkit.yml").write_text(
            "apiVersion: 1\nproviders:\n  - name: botkit\n    type: file\n"
            f"    options:\n      path: {directory}\n")
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/grafana")))
