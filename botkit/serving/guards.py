"""ASGI guards for trust: which Host may be served, who may call, how often feedback may come.

One middleware, :class:`TrustGuards`, in front of the service (see ``service.py`` for the order),
answering before BentoML reads a body:

- **Host allow-list** (``BOTKIT_ALLOWED_HOSTS``, default ``localhost,127.0.0.1,::1``): a request
  whose ``Host`` is not on it gets 400. A web page cannot reach a local bot through DNS
  rebinding (its requests carry the attacker's host name). Probes and scrapes (``/livez``,
  ``/readyz``, ``/healthz``, ``/metrics``) are exempt: kubelets and Prometheus address pods by IP.
  Entries: exact names, ``.example.com`` (the domain and its subdomains), or ``*`` (any).
- **CORS off by default**: no ``Access-Control-*`` header is ever sent unless
  ``BOTKIT_CORS_ORIGINS`` names origins, so browsers on other sites cannot read answers.
- **Bearer tokens** (``BOTKIT_API_KEYS``: sha256 hex digests of the tokens, comma-separated;
  empty, the workshop default, means no auth): ``/chat``, ``/chat_batch``, ``/feedback`` (and
  ``/metrics`` with ``BOTKIT_PROTECT_METRICS``) need ``Authorization: Bearer <token>``, else 401.
  Only digests are configured, so the settings, the environment and the manifests hold no token.
- **Feedback rate limit per client** (``BOTKIT_FEEDBACK_PER_CLIENT_PER_MIN``): 429 with
  ``Retry-After``. The client is the bearer token when auth is on, else the peer address. Limits are
  kept per worker process (no shared state on the request path): with N workers a client gets at
  most N times the limit. Loopback peers without a token are exempt unless
  ``BOTKIT_FEEDBACK_LIMIT_LOOPBACK``: readiness probes, load tests and a proxy on the same host all
  come from 127.0.0.1 (a same-host proxy should limit per client itself, e.g. HAProxy stick
  tables). The per-session limit needs the body and lives in the service (``feedback_gate``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections import OrderedDict, deque

from botkit.core.config import settings

__all__ = ["OPEN_PATHS", "RateLimiter", "TrustGuards", "host_allowed", "token_digest"]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
PROTECTED_PATHS = frozenset({"/chat", "/chat_batch", "/feedback"})
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def token_digest(token: str) -> str:
    """The digest to put in ``BOTKIT_API_KEYS`` for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def _split(raw: str) -> list[str]:
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def host_allowed(host_header: str | None, allowed: list[str]) -> bool:
    """True when the ``Host`` header (port ignored, IPv6 in brackets) matches the allow-list."""
    if "*" in allowed:
        return True
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:3000
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    for entry in allowed:
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry.strip("[]"):
            return True
    return False


class RateLimiter:
    """Sliding-window limit per key: at most ``limit`` events in ``window_s``; bounded memory."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 100_000):
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> float:
        """0 when allowed (and counted); else the seconds until the next event is allowed."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return 0.0


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None):
    from starlette.responses import Response

    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return Response(body, status_code=status, media_type="application/problem+json", headers=headers)


class TrustGuards:
    """ASGI middleware: Host allow-list, optional CORS, optional bearer auth, feedback rate limit."""

    def __init__(self, app, allowed_hosts: str | None = None, api_keys: str | None = None,
                 cors_origins: str | None = None, protect_metrics: bool | None = None,
                 feedback_per_client_per_min: int | None = None):
        self.allowed = _split(settings.allowed_hosts if allowed_hosts is None else allowed_hosts)
        self.digests = _split(settings.api_keys if api_keys is None else api_keys)
        origins = [o.strip() for o in (settings.cors_origins if cors_origins is None else cors_origins).split(",")
                   if o.strip()]
        self.protected = set(PROTECTED_PATHS)
        if settings.protect_metrics if protect_metrics is None else protect_metrics:
            self.protected.add("/metrics")
        per_client = settings.feedback_per_client_per_min if feedback_per_client_per_min is None \
            else feedback_per_client_per_min
        self.feedback_limit = RateLimiter(per_client)
        self.limit_loopback = settings.feedback_limit_loopback
        if origins:
            from starlette.middleware.cors import CORSMiddleware

            app = CORSMiddleware(app, allow_origins=origins, allow_methods=["GET", "POST"],
                                 allow_headers=["content-type", "authorization"])
        self.app = app

    def _token_ok(self, headers: dict[bytes, bytes]) -> str | None:
        """The matching digest when the request carries a configured bearer token, else None."""
        raw = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = raw.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = token_digest(token.strip())
        return next((d for d in self.digests if hmac.compare_digest(d, digest)), None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        if path not in OPEN_PATHS and not host_allowed(headers.get(b"host", b"").decode("latin-1"), self.allowed):
            return await _problem(400, "Bad Request", "Host not allowed (BOTKIT_ALLOWED_HOSTS)")(scope, receive, send)
        who = None
        if self.digests and path in self.protected:
            who = self._token_ok(headers)
            if who is None:
                return await _problem(401, "Unauthorized", "send Authorization: Bearer <token>",
                                      {"WWW-Authenticate": 'Bearer realm="botkit"'})(scope, receive, send)
        peer = (scope.get("client") or ("?", 0))[0]
        if path == "/feedback" and scope.get("method") == "POST" and (
                who or self.limit_loopback or peer not in LOOPBACK):
            client = who or peer
            wait = self.feedback_limit.check(f"client:{client}")
            if wait > 0:
                return await _problem(429, "Too Many Requests", "feedback rate limit per client",
                                      {"Retry-After": str(max(1, math.ceil(wait)))})(scope, receive, send)
        return await self.app(scope, receive, send)
