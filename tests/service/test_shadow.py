"""Shadow model on a real server: events hold production's and the shadow's answers, users see one.

The shadow's answer is its own ``shadow`` event (production's chat event is acknowledged without
waiting for it); ``read_shadowed`` joins the two by request id."""

from __future__ import annotations

import time

import httpx
import pytest

from botkit.core.config import settings
from botkit.core.registry import load_model
from botkit.ops.shadow import read_shadowed, shadow_report
from botkit.serving.events import SQLiteStore

RESPONSE_FIELDS = {"request_id", "intent", "confidence", "reply", "fallback", "model_version", "latency_ms"}
MESSAGES = ["where is my order", "I want to cancel my order", "how do I reset my password", "my payment failed",
            "hello there", "which payment methods do you accept", "what is the capital of australia",
            "do you ship to canada", "my parcel came broken", "i need the invoice",
                       "can i pay with paypal", "hi", "bye", "what size should i get", "is it in stock"]


@pytest.fixture(scope="module")
def worse_tag(bot_tag: str) -> str:
    """A candidate trained on an eighth of the data: it disagrees with production on some messages."""
    from botkit.ops.releases.candidates import train_subsampled

    return train_subsampled(0.125)


def _stored(store: SQLiteStore, rids: list[str], timeout_s: float = 15.0) -> dict:
    deadline, got = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline and len(got) < len(rids):
        for rid in rids:
            if rid not in got and (e := store.get_chat(rid)) is not None:
                got[rid] = e
        time.sleep(0.1)
    return got


def _joined(store: SQLiteStore, rids: list[str], timeout_s: float = 15.0) -> dict:
    """Chat events with their shadow answer joined; the shadow's events land after the 200s."""
    deadline, got = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline and not set(rids) <= set(got):
        got = {e.request_id: e for e in read_shadowed(store)}
        time.sleep(0.1)
    return got


def test_shadow_answers_go_to_events_and_users_see_only_production(launch, bot_tag, worse_tag):
    srv = launch(workers=1, env={"BOTKIT_SHADOW_MODEL": worse_tag})
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        answers = [c.post("/chat", json={"message": m}).json() for m in MESSAGES]
        r = c.post("/chat_batch", json={"messages": MESSAGES[:5]})
        assert r.status_code == 200, r.text
        answers += r.json()
    texts = MESSAGES + MESSAGES[:5]
    prod, shadow = load_model(bot_tag).model, load_model(worse_tag).model
    want_prod, want_shadow = prod.predict(texts), shadow.predict(texts)

    for body, p in zip(answers, want_prod, strict=True):  # the user sees production's answer only
        assert set(body) == RESPONSE_FIELDS
        assert body["model_version"] == bot_tag and body["intent"] == p.intent

    rids = [b["request_id"] for b in answers]
    store = SQLiteStore(settings.events_path)
    try:
        chats = _stored(store, rids)  # acknowledged with the 200, the shadow's answer not in it
        events = _joined(store, rids)
        shadow_rows = sum(e.payload.request_id in set(rids) for e in store.read(limit=100_000, kind="shadow"))
    finally:
        store.close()
    assert len(chats) == len(answers) and all(e.shadow_model_version is None for e in chats.values())
    assert shadow_rows == len(answers)  # one shadow event per message
    assert set(rids) <= set(events)
    for body, p, s in zip(answers, want_prod, want_shadow, strict=True):
        e = events[body["request_id"]]
        assert (e.intent, e.model_version) == (p.intent, bot_tag)
        assert (e.shadow_intent, e.shadow_fallback, e.shadow_model_version) == (s.intent, s.fallback, worse_tag)
        assert e.shadow_confidence == pytest.approx(s.confidence, abs=1e-6)

    rep = shadow_report(events[r] for r in rids)
    expected = sum(p.intent == s.intent for p, s in zip(want_prod, want_shadow, strict=True)) / len(texts)
    assert rep.events == len(answers) and rep.agreement == pytest.approx(expected, abs=1e-4)
    assert rep.shadow_models == {worse_tag: len(answers)}


def test_without_shadow_setting_events_have_no_shadow_answer(client, bot_tag):
    rid = client.post("/chat", json={"message": "where is my order"}).json()["request_id"]
    store = SQLiteStore(settings.events_path)
    try:
        e = _stored(store, [rid])[rid]
        shadowed = read_shadowed(store)
    finally:
        store.close()
    assert e.shadow_model_version is None and e.shadow_intent is None
    assert rid not in {x.request_id for x in shadowed}
