"""Per-replica metric deltas into canary samples, and canary weights: pure parts of botkit.ops.releases."""

from __future__ import annotations

import math

import pytest

from botkit.ops.releases.canary import weights_for
from botkit.ops.releases.samples import delta, expand, group_sample


def _k(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset(labels.items())


def test_expand_spreads_each_bucket_evenly_like_histogram_quantile():
    # cumulative: 2 in (0, 10 ms], 3 in (10, 25 ms], 1 above 25 ms (+Inf: twice the last bound)
    got = expand({0.01: 2, 0.025: 5, math.inf: 6}, scale=1000)
    assert got == pytest.approx([2.5, 7.5, 12.5, 17.5, 22.5, 50])


def test_delta_subtracts_and_treats_a_reset_counter_as_new():
    before = {_k("a"): 10.0, _k("b"): 50.0}
    after = {_k("a"): 15.0, _k("b"): 3.0, _k("c"): 2.0}  # b restarted from 0, c is new
    assert delta(before, after) == {_k("a"): 5.0, _k("b"): 3.0, _k("c"): 2.0}


def test_group_sample_counts_chat_errors_latency_fallbacks_and_confidence():
    d = {
        _k("bentoml_service_request_total", endpoint="/chat", http_response_code="200"): 8.0,
        _k("bentoml_service_request_total", endpoint="/chat", http_response_code="500"): 2.0,
        _k("bentoml_service_request_total", endpoint="/feedback", http_response_code="404"): 5.0,
        _k("bentoml_service_request_duration_seconds_bucket", endpoint="/chat", le="0.01"): 6.0,
        _k("bentoml_service_request_duration_seconds_bucket", endpoint="/chat", le="+Inf"): 10.0,
        _k("bentoml_service_request_duration_seconds_bucket", endpoint="/feedback", le="0.01"): 5.0,
        _k("botkit_chat_requests_total", intent="greeting"): 5.0,
        _k("botkit_chat_requests_total", intent="oos"): 3.0,
        _k("botkit_chat_fallbacks_total"): 3.0,
        _k("botkit_chat_confidence_bucket", le="0.5"): 3.0,
        _k("botkit_chat_confidence_bucket", le="1.0"): 8.0,
        _k("botkit_chat_confidence_bucket", le="+Inf"): 8.0,
    }
    g = group_sample([d, d])  # two replicas of one group add up
    assert (g.requests, g.errors, g.chats, g.fallbacks) == (20, 4, 16, 6)
    assert len(g.latencies_ms) == 20 and sum(x <= 10 for x in g.latencies_ms) == 12  # 6 per replica <= 10 ms
    assert max(g.latencies_ms) == 20.0  # +Inf: twice the last finite bound
    assert len(g.confidences) == 16 and sum(c <= 0.5 for c in g.confidences) == 6


@pytest.mark.parametrize(("percent", "stable", "canary", "expected"), [(10, 1, 1, 11), (20, 1, 1, 25),
                                                                       (10, 2, 1, 22), (50, 1, 1, 100)])
def test_canary_weight_gives_the_requested_share(percent, stable, canary, expected):
    w = weights_for(percent, stable, canary)
    assert w == expected
    assert canary * w / (canary * w + 100 * stable) == pytest.approx(percent / 100, abs=0.01)
