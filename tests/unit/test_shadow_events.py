"""Shadow fields in chat events: optional, round-trip through the store, and old rows still load."""

from __future__ import annotations

import json
import sqlite3

import pytest

from botkit.serving.events import ChatEvent, SQLiteStore


def _event(**extra) -> ChatEvent:
    return ChatEvent(ts=1.0, request_id="r1", session_id=None, text="hi", intent="greet", confidence=0.9,
                     fallback=False, latency_ms=2.0, model_version="shopbot:a", **extra)


def test_chat_event_without_shadow_has_none_fields():
    e = _event()
    assert (e.shadow_intent, e.shadow_confidence, e.shadow_fallback, e.shadow_model_version) == (None,) * 4


def test_shadow_fields_round_trip_through_sqlite(tmp_path):
    store = SQLiteStore(tmp_path / "e.sqlite3")
    store.append_many([_event(shadow_intent="oos", shadow_confidence=0.3, shadow_fallback=True,
                              shadow_model_version="shopbot:b")])
    got = store.get_chat("r1")
    assert (got.intent, got.shadow_intent, got.shadow_fallback, got.shadow_model_version) == (
        "greet", "oos", True, "shopbot:b")


def test_a_row_written_before_shadow_fields_existed_still_loads(tmp_path):
    store = SQLiteStore(tmp_path / "e.sqlite3")
    store.append_many([_event()])
    old = {k: v for k, v in _event().to_dict().items() if not k.startswith("shadow_")}
    with sqlite3.connect(tmp_path / "e.sqlite3") as conn:
        conn.execute("UPDATE events SET payload = ?", (json.dumps(old),))
    got = store.get_chat("r1")
    assert got.intent == "greet" and got.shadow_intent is None


def test_bad_shadow_field_types_are_refused():
    with pytest.raises(TypeError):
        _event(shadow_fallback="yes")
