"""Shadow answers: their own ``ShadowEvent`` joined to the chat event by request id; old rows still load."""

from __future__ import annotations

import json
import sqlite3

import pytest

from botkit.ops.shadow import read_shadowed, shadow_report
from botkit.serving.events import ChatEvent, EventWriter, ShadowEvent, SQLiteStore


def _event(rid: str = "r1", intent: str = "greet", **extra) -> ChatEvent:
    return ChatEvent(ts=1.0, request_id=rid, session_id=None, text="hi", intent=intent, confidence=0.9,
                     fallback=False, latency_ms=2.0, model_version="shopbot:a", **extra)


def _shadow(rid: str = "r1", intent: str | None = "oos", version: str = "shopbot:b") -> ShadowEvent:
    return ShadowEvent(ts=2.0, request_id=rid, model_version=version, intent=intent,
                       confidence=None if intent is None else 0.3, fallback=None if intent is None else True)


def test_chat_event_without_shadow_has_none_fields():
    e = _event()
    assert (e.shadow_intent, e.shadow_confidence, e.shadow_fallback, e.shadow_model_version) == (None,) * 4


def test_report_joins_chat_and_shadow_events_by_request_id_whatever_their_order(tmp_path):
    store = SQLiteStore(tmp_path / "e.sqlite3")
    store.append_many([_shadow("r2", "greet"), _event("r1"), _event("r2"), _event("r3"), _shadow("r1"),
                       _shadow("r3", None), _event("r4")])  # r4: sampled out, r3: the shadow failed
    got = {e.request_id: e for e in read_shadowed(store)}
    store.close()
    assert sorted(got) == ["r1", "r2", "r3"]
    assert (got["r1"].intent, got["r1"].shadow_intent, got["r1"].shadow_fallback, got["r1"].shadow_model_version) == (
        "greet", "oos", True, "shopbot:b")
    rep = shadow_report(got.values())
    assert (rep.events, rep.unanswered, rep.agreement) == (2, 1, 0.5)
    assert rep.disagreements[0]["production"] == "greet" and rep.disagreements[0]["shadow"] == "oos"


def test_report_filters_by_shadow_version(tmp_path):
    store = SQLiteStore(tmp_path / "e.sqlite3")
    store.append_many([_event("r1"), _shadow("r1", version="shopbot:b"), _event("r2"),
                       _shadow("r2", version="shopbot:c")])
    assert [e.request_id for e in read_shadowed(store, shadow_model="shopbot:c")] == ["r2"]
    store.close()


def test_rows_with_the_shadow_answer_on_the_chat_event_are_still_reported(tmp_path):
    store = SQLiteStore(tmp_path / "e.sqlite3")  # how shadow answers were stored before ShadowEvent
    store.append_many([_event(shadow_intent="oos", shadow_confidence=0.3, shadow_fallback=True,
                              shadow_model_version="shopbot:b"), _event("r2")])
    got = read_shadowed(store)
    store.close()
    assert [(e.request_id, e.shadow_intent) for e in got] == [("r1", "oos")]


def test_a_row_written_before_shadow_fields_existed_still_loads(tmp_path):
    store = SQLiteStore(tmp_path / "e.sqlite3")
    store.append_many([_event()])
    old = {k: v for k, v in _event().to_dict().items() if not k.startswith("shadow_")}
    with sqlite3.connect(tmp_path / "e.sqlite3") as conn:
        conn.execute("UPDATE events SET payload = ?", (json.dumps(old),))
    got = store.get_chat("r1")
    assert got.intent == "greet" and got.shadow_intent is None


def test_a_file_made_before_shadow_events_takes_them_and_keeps_its_ids(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the table as it was: its CHECK refuses kind 'shadow'
        conn.execute("""CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_uid TEXT NOT NULL UNIQUE,
                        kind TEXT NOT NULL CHECK (kind IN ('chat', 'feedback')), ts REAL NOT NULL,
                        request_id TEXT NOT NULL, payload TEXT NOT NULL)""")
        for rid in ("r1", "r2", "r3"):
            e = _event(rid)
            conn.execute("INSERT INTO events (event_uid, kind, ts, request_id, payload) VALUES (?, 'chat', ?, ?, ?)",
                         (e.event_uid, e.ts, rid, json.dumps(e.to_dict())))
        conn.execute("DELETE FROM events WHERE request_id = 'r3'")  # id 3 must never come back
    store = SQLiteStore(path)
    ids = store.append_many([_shadow("r1")])
    assert [(e.id, e.kind) for e in store.read()] == [(1, "chat"), (2, "chat"), (4, "shadow")] and ids == [4]
    assert store.get_chat("r2").request_id == "r2"
    store.close()


def test_writer_takes_shadow_events_without_anyone_waiting(tmp_path):
    store, answer = SQLiteStore(tmp_path / "e.sqlite3"), _shadow()
    with EventWriter(store, flush_interval_s=0) as writer:
        assert writer.submit(answer)
        assert writer.flush(10)
    assert [e.payload for e in store.read(kind="shadow")] == [answer]
    store.close()


def test_bad_shadow_field_types_are_refused():
    with pytest.raises(TypeError):
        _event(shadow_fallback="yes")
    with pytest.raises(TypeError, match="fallback"):
        ShadowEvent(ts=1.0, request_id="r1", model_version="b", fallback="yes")
    with pytest.raises(TypeError, match="request_id"):
        ShadowEvent(ts=1.0, request_id="", model_version="b")
