"""Named readers whose position survives restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator

from botkit.serving.events.schema import Event, EventStore, Offset

__all__ = ["Consumer"]

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
