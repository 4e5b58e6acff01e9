"""ASGI middleware in front of the chat service: what is refused before BentoML parses a request."""

from __future__ import annotations

from starlette.responses import JSONResponse

from botkit.core.config import settings

__all__ = ["BodyLimit"]


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
        too_big = JSONResponse({"error": f"request body over {self.max_bytes} bytes"}, status_code=413)
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
