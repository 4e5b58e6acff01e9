"""Durable log of what the bot answered and what users said about it.

Monitoring, drift checks and retraining all read the same append-only stream, so it lives
in one place with one small interface (:class:`EventStore`) and two backends: SQLite for a
single host (several BentoML worker processes writing one file) and Redis Streams when
several hosts share the stream. The request path never waits for storage: it hands events
to an :class:`EventWriter`, whose background thread writes them in batches.

Privacy: ``ChatEvent.text`` and ``FeedbackEvent.comment`` arrive *already redacted* by the
caller (the service redacts before queuing). This module neither redacts nor logs them: its
log lines carry counts, ids and error types only, and the events' ``repr`` hides those fields.

Delivery guarantees, in one place:

* every event carries an ``event_uid`` (uuid4 hex, set when it is created) that both backends
  keep unique, so a retried batch is written at most once;
* :meth:`EventStore.append_many` writes a batch in one transaction (SQLite) or one Lua
  script (Redis), so a batch is stored whole or not at all;
* :class:`EventWriter` retries failed batches until they are written; the one place an event
  is dropped is :meth:`EventWriter.submit` when its queue is full, and each such drop is
  counted in ``EventWriter.dropped`` and logged;
* :class:`Consumer` offsets are stored in the backend; processing is at-least-once between
  ``poll`` and ``commit``, and exactly-once across restarts for whatever was committed.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import queue
import random
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import redis

__all__ = [
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
    "open_store",
]

log = logging.getLogger(__name__)

KINDS = ("chat", "feedback")
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
    # Shadow model (BOTKIT_SHADOW_MODEL): its answer to the same message, never shown to the user.
    # Optional with None defaults, so rows written before these fields existed still load.
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


Payload = ChatEvent | FeedbackEvent
#: Position in the stream: the SQLite row id (int) or the Redis stream id ("ms-seq").
Offset = int | str

_PAYLOADS: dict[str, type[ChatEvent] | type[FeedbackEvent]] = {"chat": ChatEvent, "feedback": FeedbackEvent}


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
    if not isinstance(event, ChatEvent | FeedbackEvent):
        raise TypeError(f"expected ChatEvent or FeedbackEvent, got {type(event).__name__}")
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


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------

_SCHEMA = (
    # AUTOINCREMENT: ids are never reused, even after old rows are deleted, so a consumer's
    # stored offset can never point "past" a newer event.
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_uid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('chat', 'feedback')),
        ts REAL NOT NULL,
        request_id TEXT NOT NULL,
        payload TEXT NOT NULL
    )""",
    # Not unique: feedback repeats per request, and two chat events that share a client-made
    # request id are both kept (event_uid is the dedupe key); get_chat returns the first.
    "CREATE INDEX IF NOT EXISTS events_request ON events (request_id, kind)",
    "CREATE INDEX IF NOT EXISTS events_kind ON events (kind, id)",
    """CREATE TABLE IF NOT EXISTS offsets (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        updated_ts REAL NOT NULL
    )""",
)

# ON CONFLICT(event_uid) rather than INSERT OR IGNORE: OR IGNORE would also silently skip a row
# that breaks NOT NULL or CHECK; this ignores only the retried duplicate.
_INSERT = """INSERT INTO events (event_uid, kind, ts, request_id, payload) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (event_uid) DO NOTHING RETURNING id"""

# Connections inherited through fork() must never be used or closed by the child (closing one
# can disturb the parent's locks): they are parked here, referenced, until the process ends.
_FORK_ORPHANS: list[sqlite3.Connection] = []


class SQLiteStore:
    """One SQLite file shared by the worker processes of one host.

    WAL mode lets readers run while one writer commits; ``busy_timeout`` makes concurrent
    writers (BentoML workers are separate processes) queue up instead of failing.
    ``synchronous=NORMAL``: a commit is durable once it returns as far as a crashed *process*
    (kill -9, OOM) is concerned; after a power loss or kernel crash the last transactions
    may be lost, but the file is never corrupted. That trades the fsync per batch of FULL for
    throughput, which suits telemetry; pass ``synchronous="FULL"`` where it must survive
    power loss too.

    Each thread of each process gets its own connection; one made before a fork is never
    used by the child.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0,
                 synchronous: str = "NORMAL", poll_interval_s: float = 0.02) -> None:
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._synchronous = synchronous.upper()
        self._poll_interval_s = poll_interval_s
        self._closed = False
        self._schema_ready = False
        self._reset_for_process()
        self._conn()  # create the file, WAL and schema now: fail early

    def _reset_for_process(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("SQLiteStore is closed")
        if os.getpid() != self._pid:
            _FORK_ORPHANS.extend(self._conns)
            self._reset_for_process()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._with_retry_on_busy(self._connect)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() can close every thread's connection;
        # each connection is otherwise used by the thread that made it.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if not self._schema_ready:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _with_retry_on_busy(self, fn: Any) -> Any:
        # Switching a brand-new file to WAL can report "locked" without waiting on the busy
        # handler when several processes race to create it; later statements do wait.
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + random.random() * 0.04)

    @staticmethod
    def _check_offset(offset: Offset | None) -> int:
        if offset is None:
            return 0
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"SQLite offsets are non-negative ints, got {offset!r}")
        return offset

    def append_many(self, events: Iterable[Payload]) -> list[Offset]:
        rows = [_row(e) for e in events]
        if not rows:
            return []
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock up front: waits, never deadlocks
        try:
            ids: list[Offset] = []
            for row in rows:
                found = conn.execute(_INSERT, row).fetchall()
                if not found:  # a duplicate event_uid: report where the original lives
                    found = conn.execute("SELECT id FROM events WHERE event_uid = ?", (row[0],)).fetchall()
                ids.append(found[0][0])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return ids

    def read(self, after: Offset | None = None, limit: int = 1000, kind: str | None = None) -> list[Event]:
        start = self._check_offset(after)
        _check_limit(limit)
        _check_kind(kind)
        where, args = ("id > ?", (start,)) if kind is None else ("kind = ? AND id > ?", (kind, start))
        sql = f"SELECT id, kind, payload FROM events WHERE {where} ORDER BY id LIMIT ?"
        rows = self._conn().execute(sql, (*args, limit)).fetchall()
        return [Event(id=i, kind=k, payload=_payload_from_dict(k, json.loads(p))) for i, k, p in rows]

    def wait(self, after: Offset | None, timeout_s: float, limit: int = 1000) -> list[Event]:
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            events = self.read(after, limit)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return events
            time.sleep(min(self._poll_interval_s, remaining))

    def get_chat(self, request_id: str) -> ChatEvent | None:
        row = self._conn().execute(
            "SELECT payload FROM events WHERE request_id = ? AND kind = 'chat' ORDER BY id LIMIT 1",
            (request_id,)).fetchone()
        return None if row is None else ChatEvent.from_dict(json.loads(row[0]))

    def count(self, kind: str | None = None) -> int:
        _check_kind(kind)
        if kind is None:
            return self._conn().execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0]

    def load_offset(self, name: str) -> Offset | None:
        row = self._conn().execute("SELECT position FROM offsets WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def save_offset(self, name: str, offset: Offset) -> None:
        position = self._check_offset(offset)
        self._conn().execute(
            """INSERT INTO offsets (name, position, updated_ts) VALUES (?, ?, ?) ON CONFLICT (name)
               DO UPDATE SET position = excluded.position, updated_ts = excluded.updated_ts""",
            (name, position, time.time()))

    def close(self) -> None:
        """Close this process's connections; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            _FORK_ORPHANS.extend(self._conns)
        else:
            for conn in self._conns:
                conn.close()
        self._conns = []
        self._local = threading.local()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------

# One script per batch: atomic like MULTI/EXEC (no other client's command runs in between),
# and, unlike MULTI, it can skip an event whose uid was stored already. Like MULTI it does not
# roll back on a runtime error, which is why every argument is validated in Python first.
# Stream entry fields are in a fixed order (kind, rid, uid, data) so that trimming can read
# them by position. Trimming is exact and done here so per-kind counts and the request index
# stay true to what the stream still holds.
_APPEND_LUA = """
local stream, index, counts = KEYS[1], KEYS[2], KEYS[3]
local prefix, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = {}
for i = 4, #ARGV, 4 do
  local uid, kind, rid, data = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = prefix .. uid
  local id = redis.call('GET', key)
  if not id then
    id = redis.call('XADD', stream, '*', 'kind', kind, 'rid', rid, 'uid', uid, 'data', data)
    redis.call('SET', key, id, 'EX', ttl)
    redis.call('HINCRBY', counts, kind, 1)
    if kind == 'chat' then redis.call('HSETNX', index, rid, id) end
  end
  ids[#ids + 1] = id
end
if maxlen > 0 then
  local excess = redis.call('XLEN', stream) - maxlen
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)) do
      local f = entry[2]
      redis.call('HINCRBY', counts, f[2], -1)
      if f[2] == 'chat' and redis.call('HGET', index, f[4]) == entry[1] then
        redis.call('HDEL', index, f[4])
      end
    end
    redis.call('XTRIM', stream, 'MAXLEN', maxlen)
  end
end
return ids
"""

_STREAM_ID = re.compile(r"\d+-\d+")


class RedisStore:
    """A Redis Stream shared by every host; ids are stream ids ("ms-seq" strings).

    Keys besides the stream (all prefixed by its name): ``:chat-index`` (hash request_id →
    first chat event's id), ``:counts`` (hash kind → events in the stream), ``:offsets``
    (hash consumer → id) and ``:uid:<event_uid>`` (dedupe markers that expire after
    ``dedupe_ttl_s``, long past any retry). Needs Redis >= 6.2 on a single node (the script
    touches keys it derives from uids, which Redis Cluster forbids).

    With ``maxlen`` the oldest events are trimmed: a consumer lagging further behind than
    that misses them, and ``get_chat`` forgets requests that were trimmed.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", stream: str = "botkit:events",
                 maxlen: int | None = None, *, dedupe_ttl_s: int = 24 * 3600) -> None:
        import redis  # only deployments that use Redis pay for importing it

        if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 1):
            raise ValueError("maxlen must be a positive int or None")
        self.stream = stream
        self.maxlen = maxlen
        self._dedupe_ttl_s = int(dedupe_ttl_s)
        self._index = f"{stream}:chat-index"
        self._counts = f"{stream}:counts"
        self._offsets = f"{stream}:offsets"
        self._uid_prefix = f"{stream}:uid:"
        self._redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True)
        self._append = self._redis.register_script(_APPEND_LUA)

    @staticmethod
    def _check_offset(offset: Offset | None) -> str | None:
        if offset is None:
            return None
        if not isinstance(offset, str) or not _STREAM_ID.fullmatch(offset):
            raise ValueError(f"Redis offsets are stream ids like '1700000000000-0', got {offset!r}")
        return offset

    @staticmethod
    def _event(entry_id: str, fields_: dict[str, str]) -> Event:
        kind = fields_["kind"]
        return Event(id=entry_id, kind=kind, payload=_payload_from_dict(kind, json.loads(fields_["data"])))

    def append_many(self, events: Iterable[Payload]) -> list[Offset]:
        rows = [_row(e) for e in events]
        if not rows:
            return []
        args: list[Any] = [self._uid_prefix, self._dedupe_ttl_s, self.maxlen or 0]
        for uid, kind, _ts, request_id, data in rows:
            args += [uid, kind, request_id, data]
        return list(self._append(keys=[self.stream, self._index, self._counts], args=args))

    def read(self, after: Offset | None = None, limit: int = 1000, kind: str | None = None) -> list[Event]:
        start = self._check_offset(after)
        _check_limit(limit)
        _check_kind(kind)
        lower = "-" if start is None else f"({start}"
        out: list[Event] = []
        # Streams cannot filter by field: read in chunks and keep the wanted kind.
        chunk = limit if kind is None else max(limit, 500)
        while len(out) < limit:
            entries = self._redis.xrange(self.stream, min=lower, max="+", count=chunk)
            for entry_id, fields_ in entries:
                if kind is None or fields_["kind"] == kind:
                    out.append(self._event(entry_id, fields_))
                    if len(out) == limit:
                        break
            if len(entries) < chunk:
                break
            lower = f"({entries[-1][0]}"
        return out

    def wait(self, after: Offset | None, timeout_s: float, limit: int = 1000) -> list[Event]:
        start = self._check_offset(after) or "0-0"
        _check_limit(limit)
        if timeout_s <= 0:
            return self.read(after, limit)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            # BLOCK 0 would mean forever; at most 1 s per call stays inside the client's socket timeout.
            block_ms = max(1, int(min(remaining, 1.0) * 1000))
            reply = self._redis.xread({self.stream: start}, count=limit, block=block_ms)
            entries = self._xread_entries(reply)
            if entries or time.monotonic() >= deadline:
                return [self._event(i, f) for i, f in entries]

    def _xread_entries(self, reply: Any) -> list[tuple[str, dict[str, str]]]:
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3
            return list(reply.get(self.stream, [[]])[0])
        return list(reply[0][1])  # RESP2: [[stream, entries]]

    def get_chat(self, request_id: str) -> ChatEvent | None:
        entry_id = self._redis.hget(self._index, request_id)
        if entry_id is None:
            return None
        entries = self._redis.xrange(self.stream, min=entry_id, max=entry_id)
        if not entries:
            return None
        payload = self._event(*entries[0]).payload
        return payload if isinstance(payload, ChatEvent) else None

    def count(self, kind: str | None = None) -> int:
        _check_kind(kind)
        if kind is None:
            return int(self._redis.xlen(self.stream))
        return int(self._redis.hget(self._counts, kind) or 0)

    def load_offset(self, name: str) -> Offset | None:
        return self._redis.hget(self._offsets, name)

    def save_offset(self, name: str, offset: Offset) -> None:
        checked = self._check_offset(offset)
        if checked is None:
            raise ValueError("offset must not be None")
        self._redis.hset(self._offsets, name, checked)

    def close(self) -> None:
        """Release the connection pool; safe to call twice."""
        self._redis.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(backend: str, *, path: str | os.PathLike[str] | None = None, url: str | None = None,
               **options: Any) -> EventStore:
    """The store a deployment is configured for; defaults come from :mod:`botkit.core.config`.

    ``options`` go to the backend's constructor (e.g. ``stream``/``maxlen`` for Redis).
    """
    if backend == "sqlite":
        if path is None:
            from botkit.core.config import settings

            path = settings.events_path
        return SQLiteStore(path, **options)
    if backend == "redis":
        if url is None:
            from botkit.core.config import settings

            url = settings.redis_url
        return RedisStore(url, **options)
    raise ValueError(f"unknown events backend {backend!r}: use 'sqlite' or 'redis'")


# --------------------------------------------------------------------------------------------
# Consumers
# --------------------------------------------------------------------------------------------


class Consumer:
    """A named reader whose position survives restarts.

    ``poll`` and ``follow`` advance an in-memory position; ``commit`` stores it in the backend.
    After a crash, a new consumer with the same name starts after the last commit: events
    polled but not committed are read again (at-least-once), committed ones never are.
    """

    def __init__(self, store: EventStore, name: str) -> None:
        if not name:
            raise ValueError("a consumer needs a name")
        self.store = store
        self.name = name
        self.committed: Offset | None = store.load_offset(name)
        self.position: Offset | None = self.committed

    def poll(self, limit: int = 1000) -> list[Event]:
        """The next events after ``position`` (possibly none); never waits."""
        events = self.store.read(after=self.position, limit=limit)
        if events:
            self.position = events[-1].id
        return events

    def commit(self, offset: Offset | None = None) -> None:
        """Persist ``offset`` (default: everything polled so far) as processed."""
        offset = self.position if offset is None else offset
        if offset is None:
            return
        self.store.save_offset(self.name, offset)
        self.committed = offset

    def follow(self, timeout_s: float | None = None, *, batch: int = 1000) -> Iterator[Event]:
        """Yield events as the stream grows, for ``timeout_s`` seconds (None: until the caller stops).

        ``position`` moves as each event is yielded, so a caller that stops early and
        commits has processed exactly what it committed.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return
            for event in self.store.wait(self.position, min(remaining, 1.0), batch):
                self.position = event.id
                yield event


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

_WAKE = object()  # queued by flush()/close() to cut a lingering batch short


class EventWriter:
    """Takes events off the request path and writes them in batches from one daemon thread.

    ``submit`` never blocks: when ``max_queue`` events are waiting (the store is down or too
    slow) the event is dropped, counted in ``dropped`` and logged (at most every few
    seconds). That is the only place an event is lost while the process runs. Failed
    batches are retried with backoff until written; ``event_uid`` makes a retry of a batch
    that was in fact stored harmless. ``acknowledged`` counts events the store confirmed:
    those survive a kill -9, while events still queued in memory (``pending``) do not.

    Make one per process, after any fork: the thread does not survive a fork.
    """

    def __init__(self, store: EventStore, *, max_batch: int = 256, flush_interval_s: float = 0.05,
                 max_queue: int = 100_000, max_backoff_s: float = 2.0) -> None:
        if max_batch < 1 or max_queue < 1 or flush_interval_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1, flush_interval_s >= 0")
        self.store = store
        self._max_batch = max_batch
        self._flush_interval_s = flush_interval_s
        self._max_backoff_s = max_backoff_s
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._submitted = 0
        self._acknowledged = 0
        self._dropped = 0
        self._retries = 0
        self._last_drop_log = 0.0
        self._hurry = 0  # > 0 while someone waits in flush(): write without lingering
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="botkit-event-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def submitted(self) -> int:
        return self._submitted

    @property
    def acknowledged(self) -> int:
        """Events the store confirmed as written."""
        return self._acknowledged

    @property
    def dropped(self) -> int:
        """Events refused by ``submit`` because the queue was full (or the writer closed)."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Events accepted but not yet written."""
        return self._submitted - self._acknowledged

    @property
    def retries(self) -> int:
        """Failed write attempts so far (each was retried)."""
        return self._retries

    def submit(self, event: Payload) -> bool:
        """Queue ``event`` for writing; False (and counted in ``dropped``) if it was refused."""
        if not isinstance(event, ChatEvent | FeedbackEvent):
            raise TypeError(f"expected ChatEvent or FeedbackEvent, got {type(event).__name__}")
        if not self._closed:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                pass
            else:
                with self._lock:
                    self._submitted += 1
                return True
        self._count_drop()
        return False

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped += 1
            now = time.monotonic()
            should_log = now - self._last_drop_log >= 5.0
            if should_log:
                self._last_drop_log = now
            dropped = self._dropped
        if should_log:
            log.warning("event writer %s: event dropped (%d dropped so far, queue size %d)",
                        "closed" if self._closed else "queue full", dropped, self._queue.maxsize)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything submitted before this call is written; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            target = self._submitted
            self._hurry += 1
        try:
            self._wake()
            with self._done:
                while self._acknowledged < target:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    if not self._thread.is_alive():
                        return False
                    self._done.wait(0.1 if remaining is None else min(remaining, 0.1))
            return True
        finally:
            with self._lock:
                self._hurry -= 1

    def close(self, timeout_s: float | None = 30.0) -> bool:
        """Flush, then stop the thread; safe to call twice. False if events were left unwritten.

        If the store stays unreachable for ``timeout_s``, the remaining events are given up,
        logged by number, and left in ``pending``.
        """
        with self._lock:
            if self._closed:
                return self.pending == 0
            self._closed = True
        atexit.unregister(self.close)
        flushed = self.flush(timeout_s)
        self._stopping.set()
        if not flushed:
            self._abandon.set()
            log.error("event writer closed with %d events unwritten (store unreachable)", self.pending)
        self._wake()
        self._thread.join(timeout=5.0 if flushed else 0.5)  # a hung store cannot be interrupted
        return flushed

    def _wake(self) -> None:
        with contextlib.suppress(queue.Full):  # a full queue wakes the thread by itself
            self._queue.put_nowait(_WAKE)

    def _run(self) -> None:
        while not self._abandon.is_set():
            batch = self._gather()
            if batch:
                self._write(batch)
            elif self._stopping.is_set() and self._queue.empty():
                return

    def _gather(self) -> list[Payload]:
        """Up to max_batch events; lingers up to flush_interval_s after the first to fill the batch."""
        batch: list[Payload] = []
        deadline: float | None = None
        while len(batch) < self._max_batch:
            hurry = self._hurry > 0 or self._stopping.is_set()
            now = time.monotonic()
            try:
                if hurry or (deadline is not None and now >= deadline):
                    item = self._queue.get_nowait()
                elif deadline is None:
                    item = self._queue.get(timeout=0.2)
                else:
                    item = self._queue.get(timeout=deadline - now)
            except queue.Empty:
                break
            if item is _WAKE:
                continue
            batch.append(item)  # type: ignore[arg-type]
            if deadline is None:
                deadline = time.monotonic() + self._flush_interval_s
        return batch

    def _write(self, batch: list[Payload]) -> None:
        attempt = 0
        while True:
            try:
                self.store.append_many(batch)
            except Exception as exc:  # any failure is retried: the batch itself was validated
                attempt += 1
                with self._lock:
                    self._retries += 1
                delay = min(self._max_backoff_s, 0.05 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)
                log.warning("event writer: writing %d events failed (%s: %.200s); retry %d in %.2fs",
                            len(batch), type(exc).__name__, exc, attempt, delay)
                if self._abandon.wait(delay):
                    return
                continue
            with self._done:
                self._acknowledged += len(batch)
                self._done.notify_all()
            return

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
