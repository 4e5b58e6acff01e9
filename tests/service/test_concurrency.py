"""Under concurrency every caller gets the answer to its own message, not a neighbour's from the same batch."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from botkit.core.config import settings
from botkit.core.data import load
from botkit.core.redact import redact
from botkit.core.registry import load_model
from botkit.serving.events import SQLiteStore
from botkit.serving.privacy import pseudonym

N_MESSAGES = 500
THREADS = 32


def _distinct_messages(n: int) -> list[str]:
    ds = load()
    texts = list(dict.fromkeys(t for t, _ in [*ds.test, *ds.val, *ds.train]))
    assert len(texts) >= n
    return texts[:n]


def test_500_concurrent_messages_each_get_their_own_answer(fresh_client, bot_tag, scrape):
    messages = _distinct_messages(N_MESSAGES)
    model = load_model(bot_tag).model
    expected = model.predict(messages)  # the offline answer to each message
    assert len({p.intent for p in expected}) > 10, "the messages must not all share one intent"

    def ask(i: int) -> tuple[int, dict]:
        r = fresh_client.post("/chat", json={"message": messages[i], "session_id": f"conc-{i}"})
        return r.status_code, r.json()

    before = scrape()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(ask, range(N_MESSAGES)))
    after = scrape()
    texts = after.total("botkit_predict_batch_size_sum") - before.total("botkit_predict_batch_size_sum")
    calls = after.total("botkit_predict_batch_size_count") - before.total("botkit_predict_batch_size_count")
    assert texts == N_MESSAGES and calls < N_MESSAGES, "the messages were batched together"

    assert [code for code, _ in answers] == [200] * N_MESSAGES
    for msg, want, (_, body) in zip(messages, expected, answers, strict=True):
        assert (body["intent"], body["fallback"]) == (want.intent, want.fallback), msg
        assert abs(body["confidence"] - want.confidence) < 1e-3, msg
    ids = [body["request_id"] for _, body in answers]
    assert len(set(ids)) == N_MESSAGES

    # Each request id is recorded against the message it answered (text, session pseudonym and intent).
    store = SQLiteStore(settings.events_path)
    try:
        deadline = time.monotonic() + 15
        events = {}
        while len(events) < N_MESSAGES and time.monotonic() < deadline:
            events.update({rid: ev for rid in ids if rid not in events and (ev := store.get_chat(rid)) is not None})
            if len(events) < N_MESSAGES:
                time.sleep(0.2)
    finally:
        store.close()
    assert len(events) == N_MESSAGES
    for i, (msg, want, rid) in enumerate(zip(messages, expected, ids, strict=True)):
        ev = events[rid]
        assert (ev.session_id, ev.text, ev.intent) == (pseudonym(f"conc-{i}"), redact(msg), want.intent), msg
