"""``/metrics`` on the two-worker session server: the bot's own metrics next to BentoML's, summed over workers.

Every check works on the difference between two scrapes, so it does not matter what other
tests sent before (tests in this session run one after another, never alongside).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

CHAT_TOTAL = "botkit_chat_requests_total"
MESSAGES = ["where is my order", "what is the capital of australia", "hello there", "my payment failed",
            "tell me a joke about cats", "I want to return these shoes", "how do I reset my password"]


def test_chat_requests_total_grows_by_exactly_the_number_of_chats(client, scrape):
    before = scrape()
    n = 17
    answers = [client.post("/chat", json={"message": MESSAGES[i % len(MESSAGES)]}).json() for i in range(n)]
    after = scrape()
    assert after.total(CHAT_TOTAL) - before.total(CHAT_TOTAL) == n
    # ... and per intent, exactly as answered
    for intent in {a["intent"] for a in answers}:
        grown = after.value(CHAT_TOTAL, intent=intent) - before.value(CHAT_TOTAL, intent=intent)
        assert grown == sum(a["intent"] == intent for a in answers), intent


def test_fallbacks_and_confidence_count_follow_the_answers(client, scrape):
    before = scrape()
    answers = [client.post("/chat", json={"message": m}).json() for m in MESSAGES]
    batch = client.post("/chat_batch", json={"messages": MESSAGES}).json()
    after = scrape()
    answered = answers + batch
    fallbacks = sum(a["fallback"] for a in answered)
    assert fallbacks >= 2  # the two out-of-scope messages, twice
    assert after.value("botkit_chat_fallbacks_total") - before.value("botkit_chat_fallbacks_total") == fallbacks
    count = "botkit_chat_confidence_count"
    assert after.value(count) - before.value(count) == len(answered)
    total = "botkit_chat_confidence_sum"
    assert abs((after.value(total) - before.value(total)) - sum(a["confidence"] for a in answered)) < 1e-3
    # The histogram's buckets are cumulative and end in +Inf == count.
    assert after.value("botkit_chat_confidence_bucket", le="+Inf") == after.value(count)


def test_feedback_total_counts_by_rating(client, scrape):
    ids = [client.post("/chat", json={"message": "where is my order"}).json()["request_id"] for _ in range(3)]
    before = scrape()
    for rid, rating in zip(ids, ["up", "down", "down"], strict=True):
        assert client.post("/feedback", json={"request_id": rid, "rating": rating}).status_code == 200
    client.post("/feedback", json={"request_id": "f" * 32, "rating": "up"})  # 404: not counted
    after = scrape()
    grown = {r: after.value("botkit_feedback_total", rating=r) - before.value("botkit_feedback_total", rating=r)
             for r in ("up", "down")}
    assert grown == {"up": 1, "down": 2}


def test_model_info_names_the_served_model(client, scrape, bot_tag):
    client.post("/chat", json={"message": "hello"})
    page = scrape()
    assert page.value("botkit_model_info", model_version=bot_tag) == 1
    assert [lab["model_version"] for lab in page.labelsets("botkit_model_info")] == [bot_tag]


def test_bentoml_request_total_counts_chats_by_status_code(client, scrape):
    before = scrape()
    client.post("/chat", json={"message": "hello"})
    client.post("/chat", json={"message": ""})
    after = scrape()

    def grown(code: str) -> float:
        name, labels = "bentoml_service_request_total", {"endpoint": "/chat", "http_response_code": code}
        return after.total(name, **labels) - before.total(name, **labels)

    assert (grown("200"), grown("400")) == (1, 1)


def test_bot_and_bentoml_metrics_are_present_with_help_texts(client, scrape):
    client.post("/chat", json={"message": "hello"})
    page = scrape()
    families = ["botkit_chat_requests", "botkit_chat_fallbacks", "botkit_chat_confidence", "botkit_feedback",
                "botkit_model_info", "botkit_predict_duration_seconds", "botkit_predict_batch_size",
                "botkit_events_dropped", "bentoml_service_request", "bentoml_service_request_duration_seconds"]
    for family in families:
        assert page.helps.get(family, "").strip(), f"{family}: no HELP text"
    for sample in ["botkit_chat_fallbacks_total", "botkit_chat_confidence_count", "botkit_events_dropped_total",
                   "botkit_events_queued", "botkit_events_write_seconds_count"]:
        assert any(n == sample for n, _ in page.samples), f"{sample} missing"
    assert page.total(CHAT_TOTAL) >= 1
    assert page.total("bentoml_service_request_total") >= 1
    # Counters and the info gauge are summed over workers: no per-process label leaks into them.
    for name in (CHAT_TOTAL, "botkit_chat_fallbacks_total", "botkit_model_info", "bentoml_service_request_total"):
        assert all("pid" not in lab for lab in page.labelsets(name)), name


def test_counters_from_both_workers_add_up_to_every_request(fresh_client, scrape):
    """200 chats over parallel fresh connections: both workers answer, the counters sum to exactly 200."""
    n, started = 200, time.time()
    before = scrape()

    def chat(i: int) -> int:
        return fresh_client.post("/chat", json={"message": MESSAGES[i % len(MESSAGES)]}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(chat, range(n)))
    assert codes == [200] * n
    after = scrape()

    assert after.total(CHAT_TOTAL) - before.total(CHAT_TOTAL) == n
    count = "botkit_chat_confidence_count"
    assert after.value(count) - before.value(count) == n
    ok = {"endpoint": "/chat", "http_response_code": "200"}
    assert (after.total("bentoml_service_request_total", **ok)
            - before.total("bentoml_service_request_total", **ok)) == n
    # The last-request gauge is per process (label pid): both workers served part of the 200.
    last = "bentoml_service_last_request_timestamp_seconds"
    served = {lab["pid"] for lab in after.labelsets(last) if after.value(last, **lab) >= started}
    assert len(served) == 2, f"only worker(s) {served} answered"
