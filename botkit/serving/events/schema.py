"""The event schema: what a chat answer and a feedback verdict store, validated once.

Privacy: ``text`` and ``comment`` arrive already redacted; their ``repr`` hides them.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

__all__ = ["KINDS", "RATINGS", "ChatEvent", "Event", "EventStore", "FeedbackEvent", "Offset", "Payload", "ShadowEvent"]


KINDS = ("chat", "feedback", "shadow")
RATINGS = ("up", "down")


def _new_uid() -> str:
    return uuid.uuid4().hex


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    # Every field is a scalar, so this is all asdict() would do, without its deep copies.
    return tuple(f.name for f in fields(cls))


def _is_id(value: object) -> bool:
    """A non-empty str that both backends can index (no lone surrogates)."""
    if not isinstance(value, str) or not value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise TypeError(f"invalid event field: {what}")


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """One answered message. ``text`` is already redacted by the caller."""

    kind: ClassVar[str] = "chat"

    ts: float
    request_id: str
    session_id: str | None
    text: str = field(repr=False)
    intent: str
    confidence: float
    fallback: bool
    latency_ms: float
    model_version: str
    event_uid: str = field(default_factory=_new_uid)
    # Legacy: before shadow answers became their own ShadowEvent (so that a durable ack never waits
    # for the shadow), they were stored here. Kept, None by default, so those rows still load.
    shadow_intent: str | None = None
    shadow_confidence: float | None = None
    shadow_fallback: bool | None = None
    shadow_model_version: str | None = None

    def __post_init__(self) -> None:
        # Checked here, once, so that any event that exists can be serialised: a bad one fails
        # in the caller's hands instead of poisoning a batch in the writer thread.
        _require(_is_real(self.ts), "ts must be a number")
        _require(_is_id(self.request_id), "request_id must be a non-empty UTF-8 str")
        _require(self.session_id is None or isinstance(self.session_id, str), "session_id must be str|None")
        _require(isinstance(self.text, str), "text must be str")
        _require(isinstance(self.intent, str), "intent must be str")
        _require(_is_real(self.confidence), "confidence must be a number")
        _require(isinstance(self.fallback, bool), "fallback must be bool")
        _require(_is_real(self.latency_ms), "latency_ms must be a number")
        _require(isinstance(self.model_version, str), "model_version must be str")
        _require(_is_id(self.event_uid), "event_uid must be a non-empty UTF-8 str")
        _require(self.shadow_intent is None or isinstance(self.shadow_intent, str), "shadow_intent must be str|None")
        _require(self.shadow_confidence is None or _is_real(self.shadow_confidence),
                 "shadow_confidence must be a number or None")
        _require(self.shadow_fallback is None or isinstance(self.shadow_fallback, bool),
                 "shadow_fallback must be bool|None")
        _require(self.shadow_model_version is None or isinstance(self.shadow_model_version, str),
                 "shadow_model_version must be str|None")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatEvent:
        """Unknown keys are ignored so that older readers survive newer writers."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """A user's verdict on an answer. ``comment`` is already redacted by the caller."""

    kind: ClassVar[str] = "feedback"

    ts: float
    request_id: str
    rating: str
    correct_intent: str | None = None
    comment: str | None = field(default=None, repr=False)
    event_uid: str = field(default_factory=_new_uid)

    def __post_init__(self) -> None:
        _require(_is_real(self.ts), "ts must be a number")
        _require(_is_id(self.request_id), "request_id must be a non-empty UTF-8 str")
        _require(self.rating in RATINGS, "rating must be 'up' or 'down'")
        _require(self.correct_intent is None or isinstance(self.correct_intent, str),
                 "correct_intent must be str or None")
        _require(self.comment is None or isinstance(self.comment, str), "comment must be str or None")
        _require(_is_id(self.event_uid), "event_uid must be a non-empty UTF-8 str")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackEvent:
        """Unknown keys are ignored so that older readers survive newer writers."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class ShadowEvent:
    """A shadow model's answer to a message production answered (BOTKIT_SHADOW_MODEL).

    Its own event, joined to the chat event by ``request_id``, so that production's event is
    acknowledged without waiting for the shadow. ``intent`` is None when the shadow failed.
    """

    kind: ClassVar[str] = "shadow"

    ts: float
    request_id: str
    model_version: str
    intent: str | None = None
    confidence: float | None = None
    fallback: bool | None = None
    event_uid: str = field(default_factory=_new_uid)

    def __post_init__(self) -> None:
        _require(_is_real(self.ts), "ts must be a number")
        _require(_is_id(self.request_id), "request_id must be a non-empty UTF-8 str")
        _require(isinstance(self.model_version, str), "model_version must be str")
        _require(self.intent is None or isinstance(self.intent, str), "intent must be str|None")
        _require(self.confidence is None or _is_real(self.confidence), "confidence must be a number or None")
        _require(self.fallback is None or isinstance(self.fallback, bool), "fallback must be bool|None")
        _require(_is_id(self.event_uid), "event_uid must be a non-empty UTF-8 str")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShadowEvent:
        """Unknown keys are ignored so that older readers survive newer writers."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


Payload = ChatEvent | FeedbackEvent | ShadowEvent
#: Position in the stream: the SQLite row id (int) or the Redis stream id ("ms-seq").
Offset = int | str

_PAYLOADS: dict[str, type[ChatEvent] | type[FeedbackEvent] | type[ShadowEvent]] = {
    "chat": ChatEvent, "feedback": FeedbackEvent, "shadow": ShadowEvent}


def _payload_from_dict(kind: str, data: dict[str, Any]) -> Payload:
    try:
        cls = _PAYLOADS[kind]
    except KeyError:
        raise ValueError(f"unknown event kind {kind!r}") from None
    return cls.from_dict(data)


@dataclass(frozen=True, slots=True)
class Event:
    """A stored payload with the position the store gave it; ``id`` is what consumers commit."""

    id: Offset
    kind: str
    payload: Payload

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "payload": self.payload.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        kind = data["kind"]
        return cls(id=data["id"], kind=kind, payload=_payload_from_dict(kind, data["payload"]))


def _row(event: object) -> tuple[str, str, float, str, str]:
    """(uid, kind, ts, request_id, json): validated and serialised before any lock is taken."""
    if not isinstance(event, ChatEvent | FeedbackEvent | ShadowEvent):
        raise TypeError(f"expected ChatEvent, FeedbackEvent or ShadowEvent, got {type(event).__name__}")
    # ensure_ascii: any str the caller has (lone surrogates too) becomes storable ASCII.
    data = json.dumps(event.to_dict(), separators=(",", ":"))
    return event.event_uid, event.kind, float(event.ts), event.request_id, data


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")


# --------------------------------------------------------------------------------------------
# Interface
# --------------------------------------------------------------------------------------------


class EventStore(Protocol):
    """What producers, monitors and feedback validation need from a backend, and no more."""

    def append_many(self, events: Iterable[Payload]) -> list[Offset]:
        """Store a batch atomically; an event whose ``event_uid`` is stored already is skipped.

        Returns the id of each event, in order (the existing id for a skipped duplicate).
        """
        ...

    def read(self, after: Offset | None = None, limit: int = 1000, kind: str | None = None) -> list[Event]:
        """Events with id > ``after`` in ascending order (from the start when ``after`` is None)."""
        ...

    def wait(self, after: Offset | None, timeout_s: float, limit: int = 1000) -> list[Event]:
        """Like :meth:`read`, but waits up to ``timeout_s`` for the first new event (for followers)."""
        ...

    def get_chat(self, request_id: str) -> ChatEvent | None:
        """The first chat event of a request: feedback is only valid for an answer that exists."""
        ...

    def count(self, kind: str | None = None) -> int: ...

    def load_offset(self, name: str) -> Offset | None:
        """A consumer's committed position (None: it never committed)."""
        ...

    def save_offset(self, name: str, offset: Offset) -> None: ...

    def close(self) -> None: ...
