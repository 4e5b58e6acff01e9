"""The event store's promises, against a real redis-server started for this module.

Every backend-agnostic test of ``test_events.py`` (its ``SHARED_TESTS``) is collected here
again with this module's ``backend`` fixture, so Redis passes the very same checks as SQLite
(round trips, dedupe, consumers, 4 writer processes, kill -9). The rest is Redis-specific.
A missing ``redis-server`` fails the run: ``make sysdeps`` installs it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from botkit.serving.events import Consumer, RedisStore, open_store

try:  # tests/unit may or may not be a package; either way the module is the one pytest collects
    from . import test_events as shared
except ImportError:
    import test_events as shared

chat, feedback, Backend = shared.chat, shared.feedback, shared.Backend

MISSING = "redis-server is not installed: run `make sysdeps` (installs the Debian package redis-server)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(MISSING)
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # the free port may be taken before the server binds it
        port = _free_port()
        logfile = workdir / f"redis-{port}.log"
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--logfile", str(logfile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=1)
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()
        if server.poll() is None and time.monotonic() < deadline:
            break
        server.kill()
        server.wait()
    else:
        log = logfile.read_text() if logfile.exists() else ""
        pytest.fail(f"redis-server did not answer PING on 127.0.0.1:{port}\n{log[-2000:]}")
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def backend(redis_url: str) -> Backend:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return Backend("redis", {"url": redis_url})


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


store = shared.store  # the same fixture, opened on this module's backend

# Collect every backend-agnostic test of test_events.py here too, run against Redis.
globals().update({test.__name__: test for test in shared.SHARED_TESTS})


def test_redis_server_is_installed():
    assert shutil.which("redis-server"), MISSING


def test_ids_are_stream_ids_and_offsets_live_in_a_hash(store, raw):
    ids = store.append_many([chat(i) for i in range(3)])
    assert all(isinstance(i, str) and "-" in i for i in ids)
    assert raw.xlen("botkit:events") == 3
    consumer = Consumer(store, "monitor")
    consumer.poll()
    consumer.commit()
    assert raw.hgetall("botkit:events:offsets") == {"monitor": ids[-1]}
    with pytest.raises(ValueError):
        consumer.commit(3)


def test_dedupe_markers_expire_long_after_any_retry(store, raw):
    event = chat(1)
    store.append_many([event])
    ttl = raw.ttl(f"botkit:events:uid:{event.event_uid}")
    assert 3600 < ttl <= 24 * 3600


def test_maxlen_trims_oldest_and_keeps_counts_and_request_index_true(backend, raw):
    with open_store("redis", url=backend.options["url"], stream="small", maxlen=10) as small:
        small.append_many([chat(i) if i % 3 else feedback(i) for i in range(15)])
        small.append_many([chat(i) for i in range(15, 18)])
        kept = small.read(limit=100)
        assert raw.xlen("small") == small.count() == len(kept) == 10
        assert small.count("chat") == sum(e.kind == "chat" for e in kept)
        assert small.count("feedback") == sum(e.kind == "feedback" for e in kept)
        assert small.get_chat("r1") is None  # trimmed, and forgotten by the index
        assert small.get_chat("r17") is not None
        assert raw.hlen("small:chat-index") == small.count("chat")


def test_separate_streams_do_not_see_each_other(backend):
    url = backend.options["url"]
    with RedisStore(url, stream="a") as a, RedisStore(url, stream="b") as b:
        a.append_many([chat(1)])
        assert (a.count(), b.count(), b.get_chat("r1")) == (1, 0, None)


def test_waiting_for_events_blocks_in_xread_instead_of_polling(store, raw):
    raw.config_resetstat()
    start = time.monotonic()
    assert list(Consumer(store, "idle").follow(timeout_s=0.3)) == []
    assert 0.25 <= time.monotonic() - start < 1.5
    assert raw.info("commandstats")["cmdstat_xread"]["calls"] == 1
