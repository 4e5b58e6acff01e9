"""The store a deployment is configured for."""

from __future__ import annotations

import os
from typing import Any

from botkit.serving.events.redis_store import RedisStore
from botkit.serving.events.schema import EventStore
from botkit.serving.events.sqlite import SQLiteStore

__all__ = ["open_store"]


def open_store(backend: str, *, path: str | os.PathLike[str] | None = None, url: str | None = None,
               **options: Any) -> EventStore:
    """The store a deployment is configured for; defaults come from :mod:`botkit.core.config`.

    ``options`` go to the backend's constructor (e.g. ``stream``/``maxlen`` for Redis); Redis gets the
    timeouts, retries and stream bound of ``settings`` unless they are given.
    """
    if backend == "sqlite":
        if path is None:
            from botkit.core.config import settings

            path = settings.events_path
        return SQLiteStore(path, **options)
    if backend == "redis":
        from botkit.core.config import settings

        url = settings.redis_url if url is None else url
        defaults = {"maxlen": settings.redis_stream_maxlen or None, "socket_timeout_s": settings.redis_socket_timeout_s,
                    "connect_timeout_s": settings.redis_connect_timeout_s, "retries": settings.redis_retries}
        return RedisStore(url, **{**defaults, **options})
    raise ValueError(f"unknown events backend {backend!r}: use 'sqlite' or 'redis'")
