"""Event store, consumer and writer behaviour, on SQLite.

The tests collected in ``SHARED_TESTS`` only talk to the :class:`EventStore` interface through
the ``backend``/``store`` fixtures; ``test_events_redis.py`` collects them again against a
real Redis server, so both backends are held to the same promises.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import pytest

from botkit.serving.events import (
    ChatEvent,
    Consumer,
    Event,
    EventStore,
    EventWriter,
    FeedbackEvent,
    ShadowEvent,
    SQLiteStore,
    open_store,
)

SHARED_TESTS: list[Callable[..., None]] = []


def shared(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test as backend-agnostic so the Redis module runs it too."""
    SHARED_TESTS.append(test)
    return test


@dataclass(frozen=True)
class Backend:
    """Picklable recipe for a store, so spawned child processes can open their own."""

    name: str
    options: dict[str, Any]

    def open(self) -> EventStore:
        return open_store(self.name, **self.options)


@pytest.fixture
def backend(tmp_path) -> Backend:
    return Backend("sqlite", {"path": str(tmp_path / "events.sqlite3")})


@pytest.fixture
def store(backend: Backend) -> Iterator[EventStore]:
    opened = backend.open()
    yield opened
    opened.close()


def chat(i: int, prefix: str = "r") -> ChatEvent:
    return ChatEvent(ts=1_700_000_000.0 + i, request_id=f"{prefix}{i}", session_id=f"s{i % 7}",
                     text=f"[redacted] message {i}", intent="order_status", confidence=0.5 + (i % 50) / 100,
                     fallback=i % 10 == 0, latency_ms=3.5, model_version="v1")


def feedback(i: int, rating: str = "up") -> FeedbackEvent:
    return FeedbackEvent(ts=1_700_000_100.0 + i, request_id=f"r{i}", rating=rating,
                         correct_intent=None if rating == "up" else "refund", comment="[redacted]")


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


def test_events_get_a_fresh_uid_each_and_round_trip_through_json():
    a, b = chat(1), chat(1)
    assert a.event_uid != b.event_uid and len(a.event_uid) == 32
    for payload in (a, feedback(1, "down")):
        event = Event(id=7, kind=payload.kind, payload=payload)
        assert Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_invalid_fields_are_refused_when_the_event_is_made():
    with pytest.raises(TypeError, match="rating"):
        FeedbackEvent(ts=1.0, request_id="r1", rating="meh")
    with pytest.raises(TypeError, match="confidence"):
        ChatEvent(1.0, "r1", None, "t", "i", "high", False, 1.0, "v1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="request_id"):
        ChatEvent(1.0, "", None, "t", "i", 0.5, False, 1.0, "v1")


def test_repr_hides_user_text_so_a_stray_log_line_cannot_leak_it():
    event = ChatEvent(1.0, "r1", None, "my name is Quincy", "i", 0.5, False, 1.0, "v1")
    note = FeedbackEvent(1.0, "r1", "down", comment="call Quincy")
    assert "Quincy" not in repr(event) and "Quincy" not in repr(note)


def test_from_dict_ignores_fields_it_does_not_know():
    original = chat(3)
    assert ChatEvent.from_dict(original.to_dict() | {"added_in_a_later_version": 1}) == original


# --------------------------------------------------------------------------------------------
# Store interface (shared with Redis)
# --------------------------------------------------------------------------------------------


@shared
def test_both_kinds_round_trip_through_the_store(store):
    written = [chat(1), feedback(1, "down"), chat(2)]
    ids = store.append_many(written)
    events = store.read()
    assert [e.id for e in events] == ids
    assert [e.kind for e in events] == ["chat", "feedback", "chat"]
    assert [e.payload for e in events] == written
    assert all(Event.from_dict(json.loads(json.dumps(e.to_dict()))) == e for e in events)


@shared
def test_shadow_answers_are_their_own_kind_and_never_taken_for_the_chat(store):
    answer = ShadowEvent(ts=1_700_000_001.5, request_id="r1", model_version="v2", intent="refund",
                         confidence=0.25, fallback=True)
    failed = ShadowEvent(ts=1_700_000_002.5, request_id="r2", model_version="v2")  # the shadow raised
    store.append_many([answer, chat(1), failed])
    assert [e.payload for e in store.read(kind="shadow")] == [answer, failed]
    assert (store.count("shadow"), store.count("chat"), store.count()) == (2, 1, 3)
    assert store.get_chat("r1") == store.read(kind="chat")[0].payload  # the shadow came first, still not it
    assert store.get_chat("r2") is None


@shared
def test_read_after_an_offset_returns_later_events_in_ascending_order(store):
    written = [chat(i) if i % 3 else feedback(i) for i in range(30)]
    ids = store.append_many(written)
    assert len(set(ids)) == 30
    assert [e.payload for e in store.read(after=ids[9])] == written[10:]
    assert [e.payload for e in store.read(after=ids[9], limit=5)] == written[10:15]
    assert [e.payload for e in store.read(after=ids[-1])] == []
    chats = store.read(kind="chat", limit=4)
    assert [e.payload for e in chats] == [p for p in written if p.kind == "chat"][:4]
    assert [e.payload for e in store.read(after=ids[0], kind="feedback")] == written[3::3]


@shared
def test_get_chat_finds_the_answer_that_feedback_refers_to(store):
    answer = chat(1)
    store.append_many([answer, feedback(1), feedback(2)])
    assert store.get_chat("r1") == answer
    assert store.get_chat("r2") is None  # only feedback exists for r2
    assert store.get_chat("nope") is None


@shared
def test_any_unicode_text_is_stored_exactly(store):
    odd = ChatEvent(1.0, "r-ü", None, "emoji 🙂, RTL \u202e, NUL \x00, lone surrogate \ud800",
                    "i", 0.5, False, 1.0, "v1")
    store.append_many([odd])
    assert store.read()[0].payload == odd and store.get_chat("r-ü") == odd
    with pytest.raises(TypeError, match="request_id"):
        ChatEvent(1.0, "r\ud800", None, "t", "i", 0.5, False, 1.0, "v1")


@shared
def test_count_is_per_kind_and_in_total(store):
    store.append_many([chat(i) for i in range(5)] + [feedback(i) for i in range(3)])
    assert (store.count(), store.count("chat"), store.count("feedback")) == (8, 5, 3)
    with pytest.raises(ValueError):
        store.count("other")


@shared
def test_retried_batch_is_not_duplicated(store):
    batch = [chat(i) for i in range(20)] + [feedback(i) for i in range(5)]
    first = store.append_many(batch)
    again = store.append_many(batch)
    partly = store.append_many([*batch[10:], chat(99)])
    assert store.count() == 26
    assert again == first
    assert partly[:-1] == first[10:]
    assert store.count("chat") == 21 and store.count("feedback") == 5


@shared
def test_append_refuses_a_batch_with_something_that_is_not_an_event(store):
    with pytest.raises(TypeError):
        store.append_many([chat(1), {"text": "a dict"}])  # type: ignore[list-item]
    assert store.count() == 0


@shared
def test_threads_sharing_one_store_lose_nothing(store):
    def write(t: int) -> None:
        for b in range(20):
            store.append_many([chat(i, prefix=f"t{t}-") for i in range(b * 10, b * 10 + 10)])

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = store.read(limit=5000)
    assert store.count() == len(events) == 1200
    assert len({e.id for e in events}) == 1200


# --------------------------------------------------------------------------------------------
# Consumer (shared)
# --------------------------------------------------------------------------------------------


@shared
def test_consumer_resumes_after_restart_without_reading_anything_twice(store, backend):
    store.append_many([chat(i) for i in range(250)])
    first = Consumer(store, "monitor")
    seen = first.poll(100)
    first.commit()
    assert [e.payload.request_id for e in seen] == [f"r{i}" for i in range(100)]

    with backend.open() as reopened:  # a restarted monitor: new store, new consumer
        resumed = Consumer(reopened, "monitor")
        rest = resumed.poll(1000)
        assert rest[0].payload.request_id == "r100"
        assert {e.id for e in seen}.isdisjoint(e.id for e in rest)
        assert len(seen) + len(rest) == 250
        assert resumed.poll() == []
        assert [e.payload.request_id for e in Consumer(reopened, "other").poll(3)] == ["r0", "r1", "r2"]


@shared
def test_uncommitted_events_are_delivered_again_after_restart(store):
    store.append_many([chat(i) for i in range(10)])
    consumer = Consumer(store, "audit")
    done = consumer.poll(4)
    consumer.commit(done[-1].id)
    consumer.poll(4)  # read but never committed: the process "dies" here
    again = Consumer(store, "audit").poll()
    assert [e.payload.request_id for e in again] == [f"r{i}" for i in range(4, 10)]


@shared
def test_follow_yields_events_appended_by_another_thread_while_it_runs(store):
    consumer = Consumer(store, "live")
    store.append_many([chat(0)])

    def produce() -> None:
        time.sleep(0.1)
        for b in range(10):
            store.append_many([chat(i) for i in range(1 + b * 3, 4 + b * 3)])
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[Event] = []
    for event in consumer.follow(timeout_s=10):
        got.append(event)
        if len(got) == 31:
            break
    producer.join()
    assert [e.payload.request_id for e in got] == [f"r{i}" for i in range(31)]
    assert consumer.position == got[-1].id

    start = time.monotonic()
    assert list(consumer.follow(timeout_s=0.2)) == []
    assert time.monotonic() - start < 1.5


# --------------------------------------------------------------------------------------------
# Writer (shared)
# --------------------------------------------------------------------------------------------


@shared
def test_close_writes_every_event_submitted_before_it(store):
    writer = EventWriter(store)
    for i in range(5000):
        assert writer.submit(chat(i) if i % 5 else feedback(i))
    assert writer.close()
    assert store.count() == 5000 == writer.acknowledged
    assert (store.count("chat"), store.count("feedback")) == (4000, 1000)
    assert writer.dropped == 0 and writer.pending == 0
    assert writer.close()  # a second close (e.g. atexit) is harmless


class _AckLost:
    """A store whose first writes succeed but report failure, like a connection that drops."""

    def __init__(self, inner: EventStore, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def append_many(self, events):
        self.calls += 1
        ids = self.inner.append_many(events)
        if self.calls <= self.failures:
            raise ConnectionError("connection lost before the reply")
        return ids


@shared
def test_writer_retries_a_failed_batch_without_duplicating_it(store, caplog):
    flaky = _AckLost(store, failures=3)
    writer = EventWriter(flaky, max_batch=50, max_backoff_s=0.05)  # type: ignore[arg-type]
    events = [chat(i) for i in range(120)]
    for event in events:
        writer.submit(event)
    with caplog.at_level(logging.WARNING, logger="botkit.serving.events"):
        assert writer.flush(timeout_s=10)
    writer.close()
    assert writer.retries == 3 and writer.acknowledged == 120
    assert store.count() == 120
    assert "[redacted] message" not in caplog.text  # logs carry counts, never text
    assert "retry" in caplog.text


# --------------------------------------------------------------------------------------------
# Several processes and kill -9 (shared; children are spawned, as BentoML workers are)
# --------------------------------------------------------------------------------------------


def _write_in_child(backend: Backend, worker: int, n: int, barrier: Any) -> None:
    store = backend.open()
    writer = EventWriter(store)
    barrier.wait(timeout=60)
    for i in range(n):
        writer.submit(chat(i, prefix=f"w{worker}-") if i % 4 else feedback(i))
    if not writer.close(timeout_s=60) or writer.acknowledged != n:
        raise SystemExit(f"worker {worker}: acknowledged {writer.acknowledged} of {n}")
    store.close()


@shared
def test_several_processes_write_at_once_without_loss_or_duplicates(store, backend):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    workers = [ctx.Process(target=_write_in_child, args=(backend, w, 2000, barrier)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    events = store.read(limit=100_000)
    assert store.count() == len(events) == 8000
    assert len({e.payload.event_uid for e in events}) == 8000
    assert len({e.id for e in events}) == 8000
    chats = {e.payload.request_id for e in events if e.kind == "chat"}
    assert chats == {f"w{w}-{i}" for w in range(4) for i in range(2000) if i % 4}


def _write_until_killed(backend: Backend, report: Connection) -> None:
    store = backend.open()
    writer = EventWriter(store, flush_interval_s=0.005)
    i = 0
    while True:
        for _ in range(100):
            writer.submit(chat(i, prefix="k"))
            i += 1
        writer.flush()
        report.send(writer.acknowledged)


@shared
def test_kill_9_mid_stream_keeps_everything_acknowledged(backend):
    ctx = mp.get_context("spawn")
    reports, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_write_until_killed, args=(backend, child_end))
    child.start()
    child_end.close()
    acknowledged = 0
    deadline = time.monotonic() + 60
    while acknowledged < 3000:
        assert reports.poll(max(0.0, deadline - time.monotonic())), "child reported nothing"
        acknowledged = reports.recv()
    os.kill(child.pid, signal.SIGKILL)  # while it keeps submitting and writing
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    while reports.poll(0):  # reports sent just before the kill count too
        try:
            acknowledged = reports.recv()
        except EOFError:
            break

    if backend.name == "sqlite":
        with sqlite3.connect(backend.options["path"]) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with backend.open() as after:
        assert after.count() >= acknowledged
        assert after.count() == len({e.payload.event_uid for e in after.read(limit=1_000_000)})


# --------------------------------------------------------------------------------------------
# Writer and SQLite specifics
# --------------------------------------------------------------------------------------------


class _Stuck:
    """A store that hangs until released: the database is down or locked."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.written = 0

    def append_many(self, events):
        self.release.wait(10)
        self.written += len(events)
        return list(range(len(events)))


def test_submit_never_blocks_and_counts_what_a_full_queue_drops(caplog):
    stuck = _Stuck()
    writer = EventWriter(stuck, max_batch=1, max_queue=10)  # type: ignore[arg-type]
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="botkit.serving.events"):
        accepted = sum(writer.submit(chat(i)) for i in range(30))
    assert time.monotonic() - start < 0.5
    assert writer.submitted == accepted and writer.dropped == 30 - accepted >= 19
    assert "dropped" in caplog.text
    stuck.release.set()
    assert writer.close(timeout_s=10)
    assert stuck.written == writer.acknowledged == accepted
    assert not writer.submit(chat(99)) and writer.dropped == 31 - accepted  # after close: refused, counted


def test_close_gives_up_on_an_unreachable_store_and_says_how_much_was_lost(caplog):
    stuck = _Stuck()
    writer = EventWriter(stuck)  # type: ignore[arg-type]
    for i in range(5):
        writer.submit(chat(i))
    with caplog.at_level(logging.ERROR, logger="botkit.serving.events"):
        assert not writer.close(timeout_s=0.2)
    assert writer.pending == 5 and "5 events unwritten" in caplog.text
    stuck.release.set()


def test_sqlite_uses_wal_and_normal_sync(store, backend):
    with sqlite3.connect(backend.options["path"]) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn = store._conn()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_sqlite_batch_is_all_or_nothing(store, backend):
    with sqlite3.connect(backend.options["path"]) as raw:
        raw.execute("""CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.request_id = 'r2'
                       BEGIN SELECT RAISE(ABORT, 'boom'); END""")
    with pytest.raises(sqlite3.DatabaseError, match="boom"):
        store.append_many([chat(1), chat(2), chat(3)])
    assert store.count() == 0
    assert store.append_many([chat(1), chat(3)]) == [1, 2]  # ids are not reused, store still usable


def _append_after_fork(store: SQLiteStore) -> None:
    store.append_many([chat(i, prefix="child") for i in range(100)])
    store.close()


def test_sqlite_store_inherited_through_fork_opens_its_own_connection(store, backend):
    store.append_many([chat(0)])
    parent_conn = store._conn()
    child = mp.get_context("fork").Process(target=_append_after_fork, args=(store,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert store._conn() is parent_conn
    store.append_many([chat(1)])
    assert store.count() == 102
    with sqlite3.connect(backend.options["path"]) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sqlite_offsets_are_ints_and_persist_in_the_offsets_table(store, backend):
    store.append_many([chat(i) for i in range(3)])
    consumer = Consumer(store, "m")
    consumer.poll()
    consumer.commit()
    with sqlite3.connect(backend.options["path"]) as raw:
        assert raw.execute("SELECT name, position FROM offsets").fetchall() == [("m", 3)]
    with pytest.raises(ValueError):
        consumer.commit("1700000000000-0")


def test_open_store_rejects_an_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="unknown events backend"):
        open_store("kafka", path=tmp_path / "x")
    with open_store("sqlite", path=tmp_path / "deep" / "dir" / "e.db") as created:
        assert isinstance(created, SQLiteStore) and created.count() == 0
