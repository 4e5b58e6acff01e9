"""SQLite backend: one file shared by the worker processes of one host."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botkit.serving.events.schema import (
    ChatEvent,
    Event,
    Offset,
    Payload,
    _check_kind,
    _check_limit,
    _payload_from_dict,
    _row,
)

__all__ = ["SQLiteStore"]

# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------

# AUTOINCREMENT: ids are never reused, even after old rows are deleted, so a consumer's
# stored offset can never point "past" a newer event.
_EVENTS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_uid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('chat', 'feedback', 'shadow')),
        ts REAL NOT NULL,
        request_id TEXT NOT NULL,
        payload TEXT NOT NULL
    )"""

_SCHEMA = (
    _EVENTS_TABLE.format(name="events"),
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


def _migrate_kinds(conn: sqlite3.Connection) -> None:
    """A file made before 'shadow' events existed has a CHECK that refuses them: copy its rows into
    a table with today's CHECK (same ids, same AUTOINCREMENT position). Inside the caller's transaction."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
    if row is None or "'shadow'" in row[0]:
        return
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    conn.execute(_EVENTS_TABLE.format(name="events_migrating"))
    conn.execute("INSERT INTO events_migrating SELECT id, event_uid, kind, ts, request_id, payload FROM events")
    conn.execute("DROP TABLE events")  # its indexes go with it; _SCHEMA makes them again
    conn.execute("ALTER TABLE events_migrating RENAME TO events")
    if seq is not None:
        conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'", (seq[0],))


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
                    _migrate_kinds(conn)
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
