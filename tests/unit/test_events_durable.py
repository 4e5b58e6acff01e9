"""Durable acknowledgement: a caller told "stored" finds its event in the store, and a store that
cannot take events makes the caller wait no longer than its bound (then StoreUnavailable).

The faults are real: another SQLite connection holds the write lock (what a stuck writer in a
sibling process does), not a mocked store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from botkit.serving.events import ChatEvent, EventWriter, SQLiteStore, StoreUnavailable


def _chat(i: int = 0) -> ChatEvent:
    return ChatEvent(ts=time.time(), request_id=f"r{i}", session_id=None, text="hello", intent="greeting",
                     confidence=0.9, fallback=False, latency_ms=1.0, model_version="m:1")


class Counting:
    """A WriterObserver that remembers what the writer reported."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.retries = 0
        self.drops = 0

    def written(self, events: int, seconds: float, pending: int) -> None:
        self.batches.append(events)

    def retried(self, pending: int) -> None:
        self.retries += 1

    def dropped(self) -> None:
        self.drops += 1


def _lock(path: Path) -> sqlite3.Connection:
    """Hold SQLite's write lock from another connection until it is rolled back."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_an_acknowledged_event_is_in_the_store_when_store_returns(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "e.db")
    with EventWriter(store, flush_interval_s=0.002) as writer:
        event = _chat()
        asyncio.run(writer.commit(event, timeout_s=5))
        assert store.get_chat(event.request_id) == event  # no flush needed: it was committed before the ack


def test_concurrent_acks_share_group_commits(tmp_path: Path) -> None:
    store, seen = SQLiteStore(tmp_path / "e.db"), Counting()

    async def many() -> None:
        await asyncio.gather(*(writer.commit(_chat(i), timeout_s=5) for i in range(200)))

    with EventWriter(store, flush_interval_s=0.002, observer=seen) as writer:
        asyncio.run(many())
        assert store.count("chat") == 200
    assert sum(seen.batches) == 200 and len(seen.batches) < 200 / 4, seen.batches


def test_a_locked_store_gives_store_unavailable_within_the_bound_and_the_event_is_written_later(
        tmp_path: Path) -> None:
    store, seen = SQLiteStore(tmp_path / "e.db", busy_timeout_s=0.05), Counting()
    blocker = _lock(tmp_path / "e.db")
    with EventWriter(store, flush_interval_s=0.002, observer=seen, max_backoff_s=0.1) as writer:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as failure:
            asyncio.run(writer.commit(_chat(7), timeout_s=0.3))
        waited = time.monotonic() - started
        assert 0.25 <= waited < 0.8, waited
        assert failure.value.retry_after_s >= 1 and "not stored within 0.3 s" in failure.value.reason
        assert store.count() == 0  # not acknowledged and not stored: the caller was told 503
        blocker.rollback()
        assert writer.flush(10)
    assert store.get_chat("r7") is not None  # stored later, never acknowledged: allowed
    assert seen.retries >= 1


def test_a_full_queue_refuses_at_once_and_counts_the_drop(tmp_path: Path) -> None:
    store, seen = SQLiteStore(tmp_path / "e.db", busy_timeout_s=0.05), Counting()
    blocker = _lock(tmp_path / "e.db")
    writer = EventWriter(store, flush_interval_s=0.0, max_queue=1, observer=seen, max_backoff_s=0.1)
    try:
        writer.submit(_chat(1))  # taken by the thread, which now retries against the lock
        deadline = time.monotonic() + 5
        while writer.retries == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        writer.submit(_chat(2))  # fills the queue of one
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="queue full"):
            writer.commit_sync(_chat(3), timeout_s=5)
        assert time.monotonic() - started < 0.1
        assert writer.dropped == 1 and seen.drops == 1
    finally:
        blocker.rollback()
        writer.close(5)


def test_close_releases_every_waiter_instead_of_leaving_it_hanging(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "e.db", busy_timeout_s=0.05)
    blocker = _lock(tmp_path / "e.db")
    writer = EventWriter(store, flush_interval_s=0.0, max_backoff_s=0.1)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            writer.commit_sync(_chat(5), timeout_s=30)
        except StoreUnavailable as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert writer.close(timeout_s=0.3) is False  # store still locked: gives up, counts the rest
    waiter.join(5)
    assert not waiter.is_alive() and time.monotonic() - started < 3
    assert len(errors) == 1 and writer.pending == 1
    blocker.rollback()
