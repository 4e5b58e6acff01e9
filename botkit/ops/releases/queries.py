"""The PromQL behind a canary analysis, in one place for the local cluster and Kubernetes.

Per-request samples (Mann-Whitney, KS) come from the event stream; Prometheus gives the same
metrics as rates over a window. Both the ``botkit cluster canary`` report and the analysis
ConfigMap that ``botkit k8s --canary`` renders use these queries, so an operator reading a
dashboard sees the numbers the decision was made on. ``selector`` picks one group, e.g.
``track="canary"`` in Kubernetes or ``instance=~"127.0.0.1:(8001|8002)"`` on the local cluster.
"""

from __future__ import annotations

__all__ = ["canary_queries", "query"]

_TEMPLATES = {
    "error_rate": ('sum(rate(bentoml_service_request_total{{endpoint="/chat",http_response_code=~"5..",{sel}}}[{w}]))'
                   ' / sum(rate(bentoml_service_request_total{{endpoint="/chat",{sel}}}[{w}]))'),
    "latency_p95_seconds": ("histogram_quantile(0.95, sum by (le) (rate("
                            'bentoml_service_request_duration_seconds_bucket{{endpoint="/chat",{sel}}}[{w}])))'),
    "fallback_rate": ("sum(rate(botkit_chat_fallbacks_total{{{sel}}}[{w}]))"
                      " / sum(rate(botkit_chat_requests_total{{{sel}}}[{w}]))"),
    "negative_feedback_rate": ('sum(rate(botkit_feedback_total{{rating="down",{sel}}}[{w}]))'
                               " / sum(rate(botkit_feedback_total{{{sel}}}[{w}]))"),
    "confidence_mean": ("sum(rate(botkit_chat_confidence_sum{{{sel}}}[{w}]))"
                        " / sum(rate(botkit_chat_confidence_count{{{sel}}}[{w}]))"),
}


def query(metric: str, selector: str, window: str = "5m") -> str:
    """One metric's PromQL for the series matching ``selector`` over ``window``."""
    return _TEMPLATES[metric].format(sel=selector, w=window)


def canary_queries(canary: str, stable: str, window: str = "5m") -> dict[str, dict[str, str]]:
    """``{metric: {"canary": promql, "stable": promql}}`` for every canary metric."""
    return {m: {"canary": query(m, canary, window), "stable": query(m, stable, window)} for m in _TEMPLATES}
