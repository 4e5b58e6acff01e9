"""The background writer: group commits off the request path, and durable acknowledgements."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import heapq
import itertools
import logging
import queue
import random
import threading
import time
from typing import Any, Protocol

from botkit.serving.events.schema import ChatEvent, EventStore, FeedbackEvent, Payload, ShadowEvent

__all__ = ["EventWriter", "StoreUnavailable", "WriterObserver"]

log = logging.getLogger("botkit.serving.events")

# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

_WAKE = object()  # queued by flush()/close() to cut a lingering batch short


def _settle(futures: list[asyncio.Future[bool]], ok: bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(ok)


class StoreUnavailable(Exception):
    """The event could not be stored within the bound: the caller answers 503 + Retry-After."""

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class WriterObserver(Protocol):
    """What the writer reports as it goes (the service turns it into Prometheus metrics)."""

    def written(self, events: int, seconds: float, pending: int) -> None: ...

    def retried(self, pending: int) -> None: ...

    def dropped(self) -> None: ...


class EventWriter:
    """Takes events off the request path and writes them in batches from one daemon thread.

    ``submit`` never blocks: when ``max_queue`` events are waiting (the store is down or too
    slow) the event is dropped, counted in ``dropped`` and logged (at most every few
    seconds). That is the only place an event is lost while the process runs. Failed
    batches are retried with backoff until written; ``event_uid`` makes a retry of a batch
    that was in fact stored harmless. ``acknowledged`` counts events the store confirmed:
    those survive a kill -9, while events still queued in memory (``pending``) do not.

    Durable acknowledgement: :meth:`commit` (async) and :meth:`commit_sync` queue an event and
    wait for the group commit that contains it (one transaction or one Redis script per batch,
    ``flush_interval_s`` of lingering to gather it), so a caller that answers 200 afterwards
    has an event that survives a kill -9 of this process. When it is not committed within the
    bound they raise :class:`StoreUnavailable`; the event stays queued and may still be written
    (stored-but-not-acknowledged is allowed, the reverse never happens).

    Make one per process, after any fork: the thread does not survive a fork.
    """

    def __init__(self, store: EventStore, *, max_batch: int = 256, flush_interval_s: float = 0.05,
                 max_queue: int = 100_000, max_backoff_s: float = 2.0,
                 observer: WriterObserver | None = None) -> None:
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
        self._last_batch = 0  # size of the previous batch: linger only while batches fill up
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._closed = False
        self._observer = observer
        # heap of (ticket, seq, loop, future-or-callback): async waiters carry their loop, sync ones None
        self._waiters: list[tuple[int, int, Any, Any]] = []
        self._waiter_seq = itertools.count()
        self._failing_since: float | None = None  # monotonic time of the first failure of the current batch
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

    @property
    def failing_for_s(self) -> float:
        """Seconds the current batch has been failing (0 while writes succeed)."""
        since = self._failing_since
        return 0.0 if since is None else time.monotonic() - since

    def submit(self, event: Payload) -> bool:
        """Queue ``event`` for writing; False (and counted in ``dropped``) if it was refused."""
        return self._enqueue(event) is not None

    def _enqueue(self, event: Payload) -> int | None:
        """Queue ``event``; its ticket (written once ``acknowledged >= ticket``) or None if refused."""
        if not isinstance(event, ChatEvent | FeedbackEvent | ShadowEvent):
            raise TypeError(f"expected ChatEvent, FeedbackEvent or ShadowEvent, got {type(event).__name__}")
        if not self._closed:
            with self._lock:  # queue order and ticket order must agree: one writer thread, FIFO
                try:
                    self._queue.put_nowait(event)
                except queue.Full:
                    pass
                else:
                    self._submitted += 1
                    return self._submitted
        self._count_drop()
        return None

    def _on_commit(self, ticket: int, target: Any, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Register ``target`` (a future of ``loop``, or a callback when ``loop`` is None) to be settled
        once ``ticket`` is written; False (nothing registered) when it is written already."""
        with self._lock:
            if self._acknowledged < ticket:
                heapq.heappush(self._waiters, (ticket, next(self._waiter_seq), loop, target))
                return True
        return False

    def _release(self, ok: bool, everyone: bool = False) -> None:
        """Settle the waiters whose events are written: one wake-up per event loop per batch, not
        one per request (each ``call_soon_threadsafe`` writes to the loop's self-pipe)."""
        with self._lock:
            ready = []
            while self._waiters and (everyone or self._waiters[0][0] <= self._acknowledged):
                ready.append(heapq.heappop(self._waiters))
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
        for _, _, loop, target in ready:
            if loop is None:
                with contextlib.suppress(Exception):
                    target(ok)
            else:
                by_loop.setdefault(loop, []).append(target)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a loop that is closed has nobody waiting
                loop.call_soon_threadsafe(_settle, futures, ok)

    def _refused(self) -> StoreUnavailable:
        why = "event writer closed (shutting down)" if self._closed else "event queue full (store too slow or down)"
        return StoreUnavailable(why, retry_after_s=2)

    def _timed_out(self, timeout_s: float) -> StoreUnavailable:
        failing = self.failing_for_s
        why = (f"event store failing for {failing:.1f} s" if failing else "event store slow") + \
            f": event not stored within {timeout_s:g} s"
        return StoreUnavailable(why, retry_after_s=max(1, min(30, round(failing) or 1)))

    def commit_future(self, event: Payload) -> asyncio.Future[bool]:
        """Queue ``event``; a future of the running loop that becomes True once it is committed
        (False at once if it was refused, or when the writer closes without writing it)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        ticket = self._enqueue(event)
        if ticket is None:
            done.set_result(False)
        elif not self._on_commit(ticket, done, loop):
            done.set_result(True)
        return done

    async def wait_committed(self, futures: list[asyncio.Future[bool]], timeout_s: float) -> None:
        """Wait for :meth:`commit_future` results; :class:`StoreUnavailable` if any is refused or late."""
        pending = [f for f in futures if not f.done()]
        if pending:  # asyncio.wait: no task per request, unlike wait_for(gather(...))
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            if late:
                raise self._timed_out(timeout_s)
        if not all(f.result() for f in futures):
            raise self._refused()

    async def commit(self, event: Payload, timeout_s: float) -> None:
        """Queue ``event`` and wait (without blocking the event loop) until it is committed.

        Raises :class:`StoreUnavailable` when it was refused or not committed within ``timeout_s``.
        """
        await self.wait_committed([self.commit_future(event)], timeout_s)

    def commit_sync(self, event: Payload, timeout_s: float) -> None:
        """:meth:`commit` for threads: blocks the calling thread up to ``timeout_s``."""
        ticket = self._enqueue(event)
        if ticket is None:
            raise self._refused()
        done = threading.Event()
        result: list[bool] = []
        if not self._on_commit(ticket, lambda ok: (result.append(ok), done.set())):
            result.append(True)
            done.set()
        if not done.wait(timeout_s):
            raise self._timed_out(timeout_s)
        if not result[0]:
            raise self._refused()

    def _count_drop(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.dropped()
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
        self._release(False, everyone=True)  # nobody waits for a commit that will not come
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
        """Up to max_batch events; lingers up to flush_interval_s after the first to fill the batch.

        Adaptive: it lingers only when the previous batch held more than one event (traffic is
        arriving faster than commits). A lone user's event is written at once, so a durable ack
        costs it one commit, not the linger too; under load, batches grow by themselves.
        """
        batch: list[Payload] = []
        deadline: float | None = None
        linger = self._flush_interval_s if self._last_batch > 1 else 0.0
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
                deadline = time.monotonic() + linger
        self._last_batch = len(batch) or self._last_batch
        return batch

    def _write(self, batch: list[Payload]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                self.store.append_many(batch)
            except Exception as exc:  # any failure is retried: the batch itself was validated
                attempt += 1
                with self._lock:
                    self._retries += 1
                    if self._failing_since is None:
                        self._failing_since = time.monotonic()
                if self._observer is not None:
                    with contextlib.suppress(Exception):
                        self._observer.retried(self.pending)
                delay = min(self._max_backoff_s, 0.05 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)
                log.warning("event writer: writing %d events failed (%s: %.200s); retry %d in %.2fs",
                            len(batch), type(exc).__name__, exc, attempt, delay)
                if self._abandon.wait(delay):
                    return
                continue
            seconds = time.perf_counter() - started
            with self._done:
                self._acknowledged += len(batch)
                self._failing_since = None
                self._done.notify_all()
            self._release(True)
            if self._observer is not None:
                with contextlib.suppress(Exception):
                    self._observer.written(len(batch), seconds, self.pending)
            return

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
