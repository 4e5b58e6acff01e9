"""ASGI middleware in front of the chat service: what is refused before BentoML parses a request."""

from __future__ import annotations

import json

from botkit.core.config import settings
from botkit.serving.problems import PROBLEM_MEDIA_TYPE, problem, title_for

__all__ = ["BodyLimit", "JsonOnly", "ProblemResponses"]


class BodyLimit:
    """ASGI middleware: refuse bodies over the configured size with 413 before the service sees them.

    A declared ``Content-Length`` over the limit is refused without reading anything. A body
    without one (chunked transfer encoding) is read here, up to the limit, and then replayed to
    the app: raising from inside the app's ``receive`` instead would reach BentoML's endpoint
    wrapper first, which turns every unexpected exception into a 500.
    """

    def __init__(self, app, max_bytes: int = settings.max_body_bytes):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = problem(413, detail=f"request body over {self.max_bytes} bytes")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await too_big(scope, receive, send)
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return await too_big(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        return await self.app(scope, replay, send)


class JsonOnly:
    """ASGI middleware: a POST whose body is not declared JSON gets 415 before BentoML parses it.

    BentoML picks a parser from ``Content-Type``: it reads forms (so a plain HTML form on any site
    could post chats without a CORS preflight), answers 500 for multipart without a boundary, and
    treats a missing type as JSON. Here only ``application/json`` (any parameters, e.g. charset)
    passes; anything else, no type at all, and a ``Content-Encoding`` other than identity get 415
    naming what to send. Looks at headers only: cheap, and nothing is read from the body. Only the
    API ``paths`` are guarded: a POST elsewhere keeps its 404/405.
    """

    def __init__(self, app, paths: tuple[str, ...] = ()):
        self.app, self.paths = app, frozenset(paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"content-type", b"").decode("latin-1")
        media_type = raw.split(";", 1)[0].strip().lower()
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if media_type == "application/json" and encoding in ("", "identity"):
            return await self.app(scope, receive, send)
        if media_type != "application/json":
            detail = f"send Content-Type: application/json (got {raw or 'no Content-Type'!r})"
        else:
            detail = f"send an uncompressed application/json body (got Content-Encoding {encoding!r})"
        response = problem(415, detail=detail, headers={"Accept-Post": "application/json"})
        return await response(scope, receive, send)


class ProblemResponses:
    """ASGI middleware: rewrite error answers not already problem details into problem details.

    The service and the guards answer errors with ``problems.problem`` themselves; this catches
    what BentoML and Starlette answer on their own: BentoML's 400 validation error
    ``{"error": "1 validation error for ...", "detail": [pydantic errors]}`` becomes a problem whose
    ``errors`` lists ``loc``/``msg``/``type`` of each field; its 500 ``{"error": ...}`` and
    Starlette's plain-text 404/405 (``Allow`` kept) get the same shape. Only error bodies are
    buffered (they are small); successful answers stream through untouched.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: dict | None = None
        chunks: list[bytes] = []

        async def intercept(message):
            nonlocal start
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers") or []).get(b"content-type", b"")
                if message["status"] >= 400 and not ctype.startswith(PROBLEM_MEDIA_TYPE.encode()):
                    start = message
                    return None
                return await send(message)
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return None
            status = start["status"]
            kept = [(k, v) for k, v in start.get("headers") or []
                    if k.lower() not in (b"content-type", b"content-length")]
            body = problem_body(status, b"".join(chunks))
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = [*kept, (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                       (b"content-length", str(len(data)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            return await send({"type": "http.response.body", "body": data, "more_body": False})

        return await self.app(scope, receive, intercept)


def problem_body(status: int, raw: bytes) -> dict:
    """The problem-details body for an error answer that someone else wrote as ``raw``."""
    body = {"type": "about:blank", "title": title_for(status), "status": status, "detail": title_for(status)}
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
        text = raw.decode("utf-8", "replace").strip()
        if text:
            body["detail"] = text[:500]
    if isinstance(data, list) and len(data) == 1:  # BentoML 1.4 sends ({"error": ...},) for some 4xx
        data = data[0]
    if isinstance(data, dict):
        if isinstance(data.get("error"), str):
            body["detail"] = data["error"]
        elif isinstance(data.get("detail"), str):
            body["detail"] = data["detail"]
        errors = data.get("detail")
        if status == 400 and isinstance(errors, list):
            fields = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                       "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                      for e in errors if isinstance(e, dict)]
            body["errors"] = fields
            if fields:
                body["detail"] = "; ".join(f"{'.'.join(map(str, f['loc'])) or 'body'}: {f['msg']}" for f in fields)
    return body
