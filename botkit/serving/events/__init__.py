"""Durable log of what the bot answered and what users said about it.

Monitoring, drift checks and retraining all read the same append-only stream, so it lives
in one place with one small interface (:class:`EventStore`) and two backends: SQLite for a
single host (several BentoML worker processes writing one file) and Redis Streams when
several hosts share the stream. Requests hand events to an :class:`EventWriter`, whose one
background thread writes them in group commits; with durable acknowledgement (the service's
default) a request waits for the commit holding its event, bounded, before it answers 200.

Modules: ``schema`` (events, the store protocol), ``sqlite``, ``redis_store``, ``factory``
(``open_store``), ``consumer``, ``writer``.

Privacy: ``ChatEvent.text`` and ``FeedbackEvent.comment`` arrive *already redacted* by the
caller (the service redacts before queuing). This module neither redacts nor logs them: its
log lines carry counts, ids and error types only, and the events' ``repr`` hides those fields.

Delivery guarantees, in one place:

* a shadow model's answer (``BOTKIT_SHADOW_MODEL``) is a :class:`ShadowEvent` of its own, keyed by
  ``request_id`` and submitted without waiting, so production's durable ack never waits for it;
* every event carries an ``event_uid`` (uuid4 hex, set when it is created) that both backends
  keep unique, so a retried batch is written at most once;
* :meth:`EventStore.append_many` writes a batch in one transaction (SQLite) or one Lua
  script (Redis), so a batch is stored whole or not at all;
* :class:`EventWriter` retries failed batches until they are written; the one place an event
  is dropped is :meth:`EventWriter.submit` when its queue is full, and each such drop is
  counted in ``EventWriter.dropped`` and logged; :meth:`EventWriter.commit` returns only once
  the event is committed, else raises :class:`StoreUnavailable` within its bound (never "acked
  but not stored"; "stored but not acked" can happen and is harmless);
* :class:`Consumer` offsets are stored in the backend; processing is at-least-once between
  ``poll`` and ``commit``, and exactly-once across restarts for whatever was committed.
"""

from __future__ import annotations

from botkit.serving.events.consumer import Consumer
from botkit.serving.events.factory import open_store
from botkit.serving.events.redis_store import RedisStore
from botkit.serving.events.schema import (
    KINDS,
    RATINGS,
    ChatEvent,
    Event,
    EventStore,
    FeedbackEvent,
    Offset,
    Payload,
    ShadowEvent,
)
from botkit.serving.events.sqlite import SQLiteStore
from botkit.serving.events.writer import EventWriter, StoreUnavailable, WriterObserver

__all__ = [
    "KINDS",
    "RATINGS",
    "ChatEvent",
    "Consumer",
    "Event",
    "EventStore",
    "EventWriter",
    "FeedbackEvent",
    "Offset",
    "Payload",
    "RedisStore",
    "SQLiteStore",
    "ShadowEvent",
    "StoreUnavailable",
    "WriterObserver",
    "open_store",
]
