"""The serving worker's GC settings and the patched BentoML timeout: same behaviour, no lingering timers."""

from __future__ import annotations

import asyncio
import gc

import pytest

from botkit.serving.gctune import tune
from botkit.serving.timeouts import cancel_finished_timers


@pytest.fixture
def patched_middleware():
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    assert cancel_finished_timers()
    return TimeoutMiddleware


def _app(delay_s: float):
    async def app(scope, receive, send):
        await asyncio.sleep(delay_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    return app


async def _call(mw, n: int = 1):
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    await asyncio.gather(*(mw({"type": "http", "path": "/chat", "method": "POST", "headers": []}, receive, send)
                           for _ in range(n)))
    return sent


def test_answered_requests_leave_no_timer_behind(patched_middleware):
    async def main():
        mw = patched_middleware(_app(0), timeout=30)
        sent = await _call(mw, n=200)
        loop = asyncio.get_running_loop()
        # asyncio keeps scheduled handles in loop._scheduled; cancelled ones are marked (and purged lazily).
        live = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
        return sent, live

    sent, live = asyncio.run(main())
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200] * 200
    assert live == []


def test_a_slow_request_still_times_out_with_504(patched_middleware):
    async def main():
        mw = patched_middleware(_app(5), timeout=0.05)
        return await _call(mw)

    sent = asyncio.run(main())
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [504]


def test_tune_freezes_the_heap_and_raises_the_gen0_threshold():
    before = gc.get_threshold()
    try:
        tune(freeze=True, gen0_threshold=12_345, observe=False)
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
