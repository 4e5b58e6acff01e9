"""Cancel BentoML's per-request timeout timer when the request is answered (BentoML 1.4.40).

BentoML's ``TimeoutMiddleware`` (``traffic={"timeout": T}``) schedules ``loop.call_later(T, ...)``
for every request and never cancels it, so each answered request leaves a timer, a future, a
context and a bound method alive for T seconds. Under load (measured at 64 users, T = 30 s) that is
tens of thousands of live objects per worker that every full garbage collection walks: the
collections got slower as the load went on (45 -> 115 ms of CPU each, `make profile`'s GC view)
and were the long tail of botkit's latency. The replacement below behaves the same (504 after T
seconds without a response start) and cancels the timer as soon as the response starts.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_finished_timers"]


async def _call(self: Any, scope: dict, receive: Any, send: Any) -> None:
    from starlette.responses import JSONResponse

    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: dict) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            resp = JSONResponse({"error": f"Not able to process the request in {self.timeout} seconds"},
                                status_code=504)
            await resp(scope, receive, send)
        return None
    finally:
        timer.cancel()  # the one change: the response has started (or timed out); drop the timer now
    await fut  # wait for the rest of the response
    return None


def cancel_finished_timers() -> bool:
    """Patch BentoML's ``TimeoutMiddleware`` in this process; False (and no patch) on an unknown version."""
    try:
        from bentoml._internal.server.http.traffic import TimeoutMiddleware
    except ImportError:
        return False
    if getattr(TimeoutMiddleware, "_botkit_patched", False):
        return True
    if not callable(getattr(TimeoutMiddleware, "_set_timer_out", None)):
        return False  # a BentoML whose middleware we do not know: leave it alone
    TimeoutMiddleware._botkit_original_call = TimeoutMiddleware.__call__  # for A/B measurements
    TimeoutMiddleware.__call__ = _call
    TimeoutMiddleware._botkit_patched = True
    return True
