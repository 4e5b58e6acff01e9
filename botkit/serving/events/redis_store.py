"""Redis Streams backend: one stream shared by every replica and host."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------

# One script per batch: atomic like MULTI/EXEC (no other client's command runs in between),
# and, unlike MULTI, it can skip an event whose uid was stored already. Like MULTI it does not
# roll back on a runtime error, which is why every argument is validated in Python first.
# Stream entry fields are in a fixed order (kind, rid, uid, data) so that trimming can read
# them by position. Trimming is exact and done here so per-kind counts and the request index
# stay true to what the stream still holds.
_APPEND_LUA = """
local stream, index, counts = KEYS[1], KEYS[2], KEYS[3]
local prefix, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = {}
for i = 4, #ARGV, 4 do
  local uid, kind, rid, data = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = prefix .. uid
  local id = redis.call('GET', key)
  if not id then
    id = redis.call('XADD', stream, '*', 'kind', kind, 'rid', rid, 'uid', uid, 'data', data)
    redis.call('SET', key, id, 'EX', ttl)
    redis.call('HINCRBY', counts, kind, 1)
    if kind == 'chat' then redis.call('HSETNX', index, rid, id) end
  end
  ids[#ids + 1] = id
end
if maxlen > 0 then
  local excess = redis.call('XLEN', stream) - maxlen
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)) do
      local f = entry[2]
      redis.call('HINCRBY', counts, f[2], -1)
      if f[2] == 'chat' and redis.call('HGET', index, f[4]) == entry[1] then
        redis.call('HDEL', index, f[4])
      end
    end
    redis.call('XTRIM', stream, 'MAXLEN', maxlen)
  end
end
return ids
"""

_STREAM_ID = re.compile(r"\d+-\d+")


class RedisStore:
    """A Redis Stream shared by every host; ids are stream ids ("ms-seq" strings).

    Keys besides the stream (all prefixed by its name): ``:chat-index`` (hash request_id →
    first chat event's id), ``:counts`` (hash kind → events in the stream), ``:offsets``
    (hash consumer → id) and ``:uid:<event_uid>`` (dedupe markers that expire after
    ``dedupe_ttl_s``, long past any retry). Needs Redis >= 6.2 on a single node (the script
    touches keys it derives from uids, which Redis Cluster forbids).

    With ``maxlen`` the oldest events are trimmed: a consumer lagging further behind than
    that misses them, and ``get_chat`` forgets requests that were trimmed.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", stream: str = "botkit:events",
                 maxlen: int | None = None, *, dedupe_ttl_s: int = 24 * 3600,
                 socket_timeout_s: float | None = 5.0, connect_timeout_s: float | None = 2.0,
                 retries: int = 2) -> None:
        import redis  # only deployments that use Redis pay for importing it
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 1):
            raise ValueError("maxlen must be a positive int or None")
        self.stream = stream
        self.maxlen = maxlen
        self._dedupe_ttl_s = int(dedupe_ttl_s)
        self._index = f"{stream}:chat-index"
        self._counts = f"{stream}:counts"
        self._offsets = f"{stream}:offsets"
        self._uid_prefix = f"{stream}:uid:"
        # Timeouts: a hung Redis (SIGSTOP, network partition) fails a call after socket_timeout_s
        # instead of blocking a thread forever; connection errors are retried a few times with backoff.
        retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), retries) if retries > 0 else None
        self._redis: redis.Redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=socket_timeout_s, socket_connect_timeout=connect_timeout_s,
            retry=retry, retry_on_error=[redis.ConnectionError, redis.TimeoutError] if retry else None,
            health_check_interval=30)
        self._append = self._redis.register_script(_APPEND_LUA)

    @staticmethod
    def _check_offset(offset: Offset | None) -> str | None:
        if offset is None:
            return None
        if not isinstance(offset, str) or not _STREAM_ID.fullmatch(offset):
            raise ValueError(f"Redis offsets are stream ids like '1700000000000-0', got {offset!r}")
        return offset

    @staticmethod
    def _event(entry_id: str, fields_: dict[str, str]) -> Event:
        kind = fields_["kind"]
        return Event(id=entry_id, kind=kind, payload=_payload_from_dict(kind, json.loads(fields_["data"])))

    def append_many(self, events: Iterable[Payload]) -> list[Offset]:
        rows = [_row(e) for e in events]
        if not rows:
            return []
        args: list[Any] = [self._uid_prefix, self._dedupe_ttl_s, self.maxlen or 0]
        for uid, kind, _ts, request_id, data in rows:
            args += [uid, kind, request_id, data]
        return list(self._append(keys=[self.stream, self._index, self._counts], args=args))

    def read(self, after: Offset | None = None, limit: int = 1000, kind: str | None = None) -> list[Event]:
        start = self._check_offset(after)
        _check_limit(limit)
        _check_kind(kind)
        lower = "-" if start is None else f"({start}"
        out: list[Event] = []
        # Streams cannot filter by field: read in chunks and keep the wanted kind.
        chunk = limit if kind is None else max(limit, 500)
        while len(out) < limit:
            entries = self._redis.xrange(self.stream, min=lower, max="+", count=chunk)
            for entry_id, fields_ in entries:
                if kind is None or fields_["kind"] == kind:
                    out.append(self._event(entry_id, fields_))
                    if len(out) == limit:
                        break
            if len(entries) < chunk:
                break
            lower = f"({entries[-1][0]}"
        return out

    def wait(self, after: Offset | None, timeout_s: float, limit: int = 1000) -> list[Event]:
        start = self._check_offset(after) or "0-0"
        _check_limit(limit)
        if timeout_s <= 0:
            return self.read(after, limit)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            # BLOCK 0 would mean forever; at most 1 s per call stays inside the client's socket timeout.
            block_ms = max(1, int(min(remaining, 1.0) * 1000))
            reply = self._redis.xread({self.stream: start}, count=limit, block=block_ms)
            entries = self._xread_entries(reply)
            if entries or time.monotonic() >= deadline:
                return [self._event(i, f) for i, f in entries]

    def _xread_entries(self, reply: Any) -> list[tuple[str, dict[str, str]]]:
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3
            return list(reply.get(self.stream, [[]])[0])
        return list(reply[0][1])  # RESP2: [[stream, entries]]

    def get_chat(self, request_id: str) -> ChatEvent | None:
        entry_id = self._redis.hget(self._index, request_id)
        if entry_id is None:
            return None
        entries = self._redis.xrange(self.stream, min=entry_id, max=entry_id)
        if not entries:
            return None
        payload = self._event(*entries[0]).payload
        return payload if isinstance(payload, ChatEvent) else None

    def has_chats(self, request_ids: list[str], chunk: int = 5000) -> list[bool]:
        """For each request id, whether its chat event is in the stream (one round trip per chunk)."""
        out: list[bool] = []
        for i in range(0, len(request_ids), chunk):
            out += [v is not None for v in self._redis.hmget(self._index, request_ids[i:i + chunk])]
        return out

    def count(self, kind: str | None = None) -> int:
        _check_kind(kind)
        if kind is None:
            return int(self._redis.xlen(self.stream))
        return int(self._redis.hget(self._counts, kind) or 0)

    def load_offset(self, name: str) -> Offset | None:
        return self._redis.hget(self._offsets, name)

    def save_offset(self, name: str, offset: Offset) -> None:
        checked = self._check_offset(offset)
        if checked is None:
            raise ValueError("offset must not be None")
        self._redis.hset(self._offsets, name, checked)

    def close(self) -> None:
        """Release the connection pool; safe to call twice."""
        self._redis.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
