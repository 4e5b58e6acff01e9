"""The chat bot as a BentoML service: validate, predict (batched), redact, record, answer.

Thin on purpose: no training and no statistics here. The model comes from the BentoML
model store (``BOTKIT_MODEL_TAG``, else the newest ``production`` model, else the newest);
events go to ``botkit.serving.events`` through a background writer so the request path never
waits on storage. Serve it with ``botkit serve`` (or ``bentoml serve botkit.serving.service:Chat``).

Workers come from ``BOTKIT_WORKERS`` when this module is imported; ``bentoml build`` freezes
that number into the bento, so set it before building (``botkit build --workers N``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from typing import Annotated, Literal

import bentoml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import JSONResponse

from botkit.core.config import settings

__all__ = ["Chat", "ChatBatchRequest", "ChatRequest", "ChatResponse", "FeedbackRequest", "FeedbackResponse"]

log = logging.getLogger("botkit.serving.service")
if not settings.tracing:  # before BentoML builds its tracer provider in the worker
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
MAX_CHARS = settings.max_message_chars
MAX_BATCH_MESSAGES = 256
# Fault drills (botkit.ops.monitor.simulate): with BOTKIT_FAULT_INJECTION=true the service sleeps for
# the milliseconds a loopback caller puts in this header, inside the measured request time.
FAULT_HEADER = "x-botkit-delay-ms"
FAULT_MAX_DELAY_MS = 10_000


def _clean(text: str) -> str:
    """Reject what no user types: blank text and control characters (other than newline and tab)."""
    # Invisible format characters (zero-width space, joiners, BOM) alone are as empty as spaces.
    if not text.strip() or all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text):
        raise ValueError("message must not be empty or whitespace")
    # C0 controls, DEL and the C1 controls U+0080-U+009F (Unicode category Cc; U+009B is the 8-bit CSI).
    if any((ord(ch) < 32 and ch not in "\n\t\r") or 0x7F <= ord(ch) <= 0x9F for ch in text):
        raise ValueError("message contains control characters")
    return text


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: Annotated[str, Field(min_length=1, max_length=MAX_CHARS, description="What the user typed.")]
    session_id: Annotated[str | None, Field(max_length=128, description="Groups the turns of one user.")] = None

    @field_validator("message")
    @classmethod
    def _check(cls, v: str) -> str:
        return _clean(v)


class ChatBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_CHARS)]],
                        Field(min_length=1, max_length=MAX_BATCH_MESSAGES)]
    session_id: Annotated[str | None, Field(max_length=128)] = None

    @field_validator("messages")
    @classmethod
    def _check_all(cls, v: list[str]) -> list[str]:
        return [_clean(m) for m in v]


class ChatResponse(BaseModel):
    request_id: str
    intent: str = Field(description="Predicted intent; 'oos' when the bot fell back.")
    confidence: float = Field(ge=0, le=1)
    reply: str
    fallback: bool
    model_version: str
    latency_ms: float = Field(description="Time spent inside the service, in milliseconds.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    rating: Literal["up", "down"]
    correct_intent: Annotated[str | None, Field(max_length=100)] = None
    comment: Annotated[str | None, Field(max_length=MAX_CHARS)] = None


class FeedbackResponse(BaseModel):
    accepted: bool
    request_id: str


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


class _Metrics:
    """Bot metrics next to BentoML's own; created in the worker, after multiprocess mode is set."""

    def __init__(self, model_version: str):
        import prometheus_client as pc

        self.requests = pc.Counter("botkit_chat_requests_total", "Chat messages answered, by predicted intent.",
                                   ["intent"])
        self.fallbacks = pc.Counter("botkit_chat_fallbacks_total", "Chat messages answered with the fallback.")
        self.confidence = pc.Histogram("botkit_chat_confidence", "Confidence (0-1) of the top intent.",
                                       buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))
        self.predict = pc.Histogram("botkit_predict_duration_seconds", "Model time per predict call.",
                                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.batch = pc.Histogram("botkit_predict_batch_size", "Texts per predict call (adaptive batching).",
                                  buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.feedback = pc.Counter("botkit_feedback_total", "Feedback received, by rating.", ["rating"])
        self.dropped = pc.Gauge("botkit_events_dropped", "Events dropped because the writer queue was full.",
                                multiprocess_mode="livesum")
        info = pc.Gauge("botkit_model_info", "The model this worker serves (value is always 1).",
                        ["model_version"], multiprocess_mode="max")
        info.labels(model_version=model_version).set(1)


@bentoml.service(
    name="botkit-chat",
    workers=settings.workers,
    traffic={"timeout": 30},
    logging={"access": {"enabled": settings.access_log}},
)
class Chat:
    """The shopbot chat API."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._error: str | None = None
        self.loaded = None
        self.model_version = ""
        self.metrics: _Metrics | None = None
        self.batcher = None
        self.writer = None
        self._recent: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        fault = os.environ.get("BOTKIT_FAULT_INJECTION", "").strip().lower()
        self._fault_injection = fault in {"1", "true", "yes", "on"}
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    # ---------------------------------------------------------------------------- lifecycle
    def _load(self) -> None:
        try:
            from botkit.core.registry import load_model
            from botkit.serving.batching import MicroBatcher
            from botkit.serving.events import EventWriter, open_store

            cfg = settings.from_env()
            self.loaded = load_model(cfg.model_tag or None, cfg.model_name)
            self.model_version = self.loaded.tag
            self.loaded.model.predict(["hello", "where is my order"])  # warm caches before saying ready
            self.metrics = _Metrics(self.model_version)
            self.batcher = MicroBatcher(self._predict_batch, max_batch_size=cfg.max_batch_size)
            store = open_store(cfg.events_backend, path=cfg.events_path, url=cfg.redis_url)
            self.writer = EventWriter(store)
            self._batching = cfg.batching
            if cfg.startup_delay_s:
                time.sleep(cfg.startup_delay_s)
            self._ready.set()
            log.info("serving %s", self.model_version)
        except Exception as exc:  # readiness stays false; the reason shows in /readyz's log and in chat 503s
            self._error = f"{type(exc).__name__}: {exc}"
            log.error("model load failed: %s", self._error)

    def __is_ready__(self) -> bool:
        return self._ready.is_set()

    def __del__(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def _wait_ready(self) -> bool:
        """Workers load independently: one may be ready while another still loads. A request
        that lands on a loading worker waits (up to ``ready_wait_s``) instead of failing."""
        if self._ready.is_set():
            return True
        if self._error is None and settings.ready_wait_s > 0:
            await asyncio.get_running_loop().run_in_executor(None, self._ready.wait, settings.ready_wait_s)
        return self._ready.is_set()

    def _not_ready(self, ctx: bentoml.Context | None = None):
        reason = self._error or "model is still loading"
        if ctx is not None:  # BentoML copies ctx's status onto any Response an API with ctx returns
            ctx.response.status_code = 503
        return JSONResponse({"error": f"service not ready: {reason}"}, status_code=503)

    # ---------------------------------------------------------------------------- the work
    def _predict_batch(self, texts):
        t0 = time.perf_counter()
        preds = self.loaded.model.predict(texts)
        self.metrics.predict.observe(time.perf_counter() - t0)
        self.metrics.batch.observe(len(texts))
        return preds

    def _answer(self, text: str, pred, session_id: str | None, started: float) -> ChatResponse:
        from botkit.core.redact import redact
        from botkit.serving.events import ChatEvent

        rid = uuid.uuid4().hex
        latency = round((time.perf_counter() - started) * 1000, 3)
        resp = ChatResponse(request_id=rid, intent=pred.intent, confidence=pred.confidence,
                            reply=self.loaded.model.reply(pred, rid), fallback=pred.fallback,
                            model_version=self.model_version, latency_ms=latency)
        self._remember(rid)
        self.writer.submit(ChatEvent(ts=time.time(), request_id=rid, session_id=session_id, text=redact(text),
                                     intent=pred.intent, confidence=pred.confidence, fallback=pred.fallback,
                                     latency_ms=latency, model_version=self.model_version))
        m = self.metrics
        m.requests.labels(intent=pred.intent).inc()
        m.confidence.observe(pred.confidence)
        if pred.fallback:
            m.fallbacks.inc()
        return resp

    async def _injected_delay(self, ctx: bentoml.Context | None) -> None:
        """Fault drill: sleep for ``X-Botkit-Delay-Ms`` when enabled and the caller is on loopback."""
        if not self._fault_injection or ctx is None:
            return
        raw = ctx.request.headers.get(FAULT_HEADER)
        client = ctx.request.client
        if not raw or client is None or client.host not in ("127.0.0.1", "::1"):
            return
        try:
            delay_ms = min(float(raw), FAULT_MAX_DELAY_MS)
        except ValueError:
            return
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def _remember(self, rid: str) -> None:
        self._recent[rid] = ()
        if len(self._recent) > 50_000:
            self._recent.popitem(last=False)

    # ---------------------------------------------------------------------------- the API
    @bentoml.api(route="/chat", input_spec=ChatRequest, output_spec=ChatResponse)
    async def chat(self, message: str, session_id: str | None = None,
                   *, ctx: bentoml.Context = None) -> ChatResponse:
        """Answer one message: intent, confidence, reply, and whether the bot fell back."""
        # ctx is annotated exactly bentoml.Context (not Optional): that is how BentoML knows to inject it.
        if not await self._wait_ready():
            return self._not_ready(ctx)
        started = time.perf_counter()
        await self._injected_delay(ctx)
        if self._batching:
            pred = await self.batcher.submit(message)
        else:
            pred = self._predict_batch([message])[0]
        return self._answer(message, pred, session_id, started)

    @bentoml.api(route="/chat_batch", input_spec=ChatBatchRequest)
    async def chat_batch(self, messages: list[str], session_id: str | None = None,
                         *, ctx: bentoml.Context = None) -> list[ChatResponse]:
        """Answer many messages in one call (one predict for all of them)."""
        if not await self._wait_ready():
            return self._not_ready(ctx)
        started = time.perf_counter()
        await self._injected_delay(ctx)
        preds = await asyncio.get_running_loop().run_in_executor(None, self._predict_batch, messages)
        return [self._answer(t, p, session_id, started) for t, p in zip(messages, preds, strict=True)]

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest, output_spec=FeedbackResponse)
    async def feedback(self, request_id: str, rating: str, correct_intent: str | None = None,
                       comment: str | None = None) -> FeedbackResponse:
        """Rate an answer; ``correct_intent`` feeds retraining. Unknown ids and intents get 404/422."""
        from botkit.core.redact import redact
        from botkit.serving.events import FeedbackEvent

        if not await self._wait_ready():
            return self._not_ready()
        known = set(self.loaded.model.intents) | {"oos"}
        if correct_intent is not None and correct_intent not in known:
            return JSONResponse({"error": f"unknown intent {correct_intent!r}",
                                 "known_intents": sorted(known)}, status_code=422)
        if not await self._known_request(request_id):
            return JSONResponse({"error": f"unknown request_id {request_id!r}"}, status_code=404)
        self.writer.submit(FeedbackEvent(ts=time.time(), request_id=request_id, rating=rating,
                                         correct_intent=correct_intent,
                                         comment=redact(comment) if comment else None))
        self.metrics.feedback.labels(rating=rating).inc()
        return FeedbackResponse(accepted=True, request_id=request_id)

    async def _known_request(self, request_id: str) -> bool:
        """This worker's recent answers first, then the store (another worker may have answered)."""
        if request_id in self._recent:
            return True
        loop = asyncio.get_running_loop()
        for wait in (0.0, 0.25):  # another worker's writer flushes every 50 ms
            await asyncio.sleep(wait)
            if await loop.run_in_executor(None, self.writer.store.get_chat, request_id) is not None:
                return True
        return False


Chat.add_asgi_middleware(BodyLimit, max_bytes=settings.max_body_bytes)


def openapi_document(url: str) -> dict:
    """The live OpenAPI document (for tests and docs)."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/docs.json", timeout=10) as r:
        return json.loads(r.read())
