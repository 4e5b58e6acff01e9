"""One feedback per answer, and a per-session rate limit: what keeps ``/feedback`` from being stuffed.

Without it, one request id could be rated and corrected any number of times, and retraining
learned from every copy. Here:

- **Once per request id**: the first feedback *claims* the id, atomically, in a store every
  worker and replica shares; a later one gets 409. SQLite (one host): a table of claimed ids in
  ``<home>/feedback_claims.sqlite3`` (``INSERT ... ON CONFLICT DO NOTHING``: one winner even
  when two workers race). Redis (many replicas): ``SET botkit:feedback:<id> NX EX 30 days``.
  A claim whose event then fails to store stays claimed (the client got a 503): a lost rating
  beats a double count. Retraining also counts at most one correction per request id.
- **Per session** (``BOTKIT_FEEDBACK_PER_SESSION_PER_MIN``): the session is the one of the
  answer being rated (its pseudonym), so a client cannot dodge it by naming another session in
  the feedback. 429 with ``Retry-After``; kept per worker, like the per-client limit in
  ``guards``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from botkit.core.config import settings
from botkit.serving.guards import RateLimiter

__all__ = ["CLAIM_TTL_S", "FeedbackGate", "RedisClaims", "SQLiteClaims"]

CLAIM_TTL_S = 30 * 24 * 3600


class SQLiteClaims:
    """Claimed request ids in a small SQLite file shared by the workers of one host."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().execute("CREATE TABLE IF NOT EXISTS claims (request_id TEXT PRIMARY KEY, ts REAL NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA busy_timeout = 10000")
            self._local.conn = conn
        return conn

    def claim(self, request_id: str) -> bool:
        """True for the first claim of ``request_id``, False ever after."""
        row = self._conn().execute(
            "INSERT INTO claims (request_id, ts) VALUES (?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING 1",
            (request_id, time.time())).fetchone()
        return row is not None


class RedisClaims:
    """Claimed request ids as Redis keys with a TTL, shared by every replica."""

    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=settings.redis_socket_timeout_s,
                                           socket_connect_timeout=settings.redis_connect_timeout_s)

    def claim(self, request_id: str) -> bool:
        return bool(self._redis.set(f"botkit:feedback:{request_id}", b"1", nx=True, ex=CLAIM_TTL_S))


class FeedbackGate:
    """The per-session limit and the once-per-request claim, for the service's feedback handler."""

    def __init__(self, backend: str | None = None, per_session_per_min: int | None = None):
        backend = backend or settings.events_backend
        self.claims = (RedisClaims(settings.redis_url) if backend == "redis"
                       else SQLiteClaims(settings.home / "feedback_claims.sqlite3"))
        limit = settings.feedback_per_session_per_min if per_session_per_min is None else per_session_per_min
        self.sessions = RateLimiter(limit)

    def session_wait(self, session: str | None) -> float:
        """Seconds to wait before this session may send feedback again (0: go ahead, and counted)."""
        return 0.0 if not session else self.sessions.check(session)

    def claim(self, request_id: str) -> bool:
        return self.claims.claim(request_id)
