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
import random
import sys
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from botkit.core.config import configure_bentoml, settings
from botkit.serving import logscrub, routelabels
from botkit.serving.contract import ServeOpenAPI
from botkit.serving.fairness import SWITCH_INTERVAL_S, BatchFairness
from botkit.serving.feedback_gate import FeedbackGate
from botkit.serving.guards import TrustGuards
from botkit.serving.metrics import BotMetrics
from botkit.serving.middleware import BodyLimit, JsonOnly, ProblemResponses
from botkit.serving.privacy import pseudonym
from botkit.serving.problems import problem
from botkit.serving.schemas import (
    ChatBatchRequest,
    ChatRequest,
    ChatResponse,
    FeedbackRequest,
    FeedbackResponse,
)
from botkit.serving.serve import die_with_parent
from botkit.serving.timeouts import cancel_finished_timers

configure_bentoml()  # BentoML reads its home and its tracking switch when imported: set them first
import bentoml  # noqa: E402

__all__ = ["Chat", "ChatBatchRequest", "ChatRequest", "ChatResponse", "FeedbackRequest", "FeedbackResponse"]

log = logging.getLogger("botkit.serving.service")
logscrub.install()  # a rejected request's body never reaches a log line (BentoML logs pydantic's input)
if "_bentoml_impl" in sys.argv[0]:  # a BentoML worker: go when the arbiter goes (kill -9 of a replica)
    die_with_parent()
if not settings.tracing:  # before BentoML builds its tracer provider in the worker
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
# Fault drills (botkit.ops.monitor.simulate): with BOTKIT_FAULT_INJECTION=true the service sleeps for
# the milliseconds a loopback caller puts in this header, inside the measured request time.
FAULT_HEADER = "x-botkit-delay-ms"
FAULT_MAX_DELAY_MS = 10_000
FAULT_ERROR_HEADER = "x-botkit-error-ratio"
# Shadow model: messages answered within this many seconds are predicted by the shadow together,
# after their responses have left (so its cost is CPU, not a wait on any response). Nobody waits
# for it, so it gathers long: a predict call costs ~1.5 ms fixed + ~0.07 ms a message here.
SHADOW_DELAY_S = 0.05
SHADOW_MAX_BATCH = 64  # a full batch goes at once; one predict holds the event loop ~5 ms, no more


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
        self.metrics: BotMetrics | None = None
        self.batcher = None
        self.writer = None
        self._recent: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self.fairness = BatchFairness()  # batches give way to single chats (botkit.serving.fairness)
        self.shadow = None  # a second LoadedModel (BOTKIT_SHADOW_MODEL); users never see its answers
        self._shadow_queue: list[tuple[str, str]] = []  # (request_id, text) the shadow has yet to answer
        self._shadow_scheduled: asyncio.Handle | None = None  # the pending _shadow_drain
        self._shadow_sample = 1.0  # share of messages the shadow answers (BOTKIT_SHADOW_SAMPLE)
        self._fault_injection = settings.from_env().fault_injection
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
            if cfg.shadow_model:
                self.shadow = load_model(cfg.shadow_model, cfg.model_name)
                self._shadow_sample = cfg.shadow_sample
                self.shadow.model.predict(["hello", "where is my order"])
                log.info("shadow model %s", self.shadow.tag)
            self.metrics = BotMetrics(self.model_version)
            self.batcher = MicroBatcher(self._predict_batch, max_batch_size=cfg.max_batch_size)
            store = open_store(cfg.events_backend, path=cfg.events_path, url=cfg.redis_url)
            self.writer = EventWriter(store, flush_interval_s=cfg.events_commit_interval_s,
                                      max_queue=cfg.events_max_queue, observer=self.metrics.events)
            self._store_reads = ThreadPoolExecutor(4, thread_name_prefix="event-store-read")
            self.feedback_gate = FeedbackGate(cfg.events_backend)  # once per request id, per-session limit
            self._batching = cfg.batching
            if cfg.startup_delay_s:
                time.sleep(cfg.startup_delay_s)
            from botkit.serving.gctune import tune
            tune(freeze=cfg.gc_freeze, gen0_threshold=cfg.gc_gen0_threshold)  # the p99 was full GCs (gctune)
            sys.setswitchinterval(SWITCH_INTERVAL_S)  # batch chunks hand the GIL back to /chat sooner (fairness)
            self._ready.set()
            log.info("serving %s", self.model_version)
        except Exception as exc:  # readiness stays false; the reason shows in /readyz's log and in chat 503s
            self._error = f"{type(exc).__name__}: {exc}"
            log.error("model load failed: %s", self._error)

    def __is_ready__(self) -> bool:
        return self._ready.is_set()

    @bentoml.on_shutdown
    def _flush_events(self) -> None:
        """Shutdown (SIGTERM): write what is queued, for at most ``events_flush_bound_s``; log the rest."""
        if self.writer is None:
            return
        while self._shadow_queue:  # production's events are stored already; answer what is left
            for event in self._shadow_events():
                self.writer.submit(event)
        bound = settings.events_flush_bound_s
        if self.writer.close(timeout_s=bound):
            log.info("event writer flushed: %d events written, 0 unwritten", self.writer.acknowledged)
        else:
            log.error("event writer: %d events unwritten after %.0f s (store unreachable)", self.writer.pending, bound)

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
        return problem(503, detail=f"service not ready: {reason}", headers={"Retry-After": "1"})

    # ---------------------------------------------------------------------------- the work
    def _predict_batch(self, texts):
        t0 = time.perf_counter()
        preds = self.loaded.model.predict(texts)
        self.metrics.predict.observe(time.perf_counter() - t0)
        self.metrics.batch.observe(len(texts))
        return preds

    def _answer(self, text: str, pred, session_id: str | None, started: float,
                acks: list | None = None, redacted: str | None = None) -> ChatResponse:
        from botkit.core.redact import redact
        from botkit.serving.events import ChatEvent

        rid = uuid.uuid4().hex
        latency = round((time.perf_counter() - started) * 1000, 3)
        resp = ChatResponse(request_id=rid, intent=pred.intent, confidence=pred.confidence,
                            reply=self.loaded.model.reply(pred, rid), fallback=pred.fallback,
                            model_version=self.model_version, latency_ms=latency)
        self._remember(rid, session_id)
        ack = self._record(ChatEvent(ts=time.time(), request_id=rid, session_id=session_id,
                                     text=redact(text) if redacted is None else redacted,
                                     intent=pred.intent, confidence=pred.confidence, fallback=pred.fallback,
                                     latency_ms=latency, model_version=self.model_version))
        self._shadow_later(rid, text)
        if acks is not None:
            acks.append(ack)
        m = self.metrics
        m.requests.labels(intent=pred.intent).inc()
        m.confidence.observe(pred.confidence)
        if pred.fallback:
            m.fallbacks.inc()
        return resp

    def _record(self, event) -> asyncio.Future:
        """Queue the event; a future that turns True once it is committed (durable acks await it)."""
        return self.writer.commit_future(event)

    def _shadow_later(self, request_id: str, text: str) -> None:
        """Off the response path: the shadow answers in a later batch, as its own ShadowEvent that
        nobody waits for, so production's durable ack never waits for the shadow."""
        if self.shadow is None or (self._shadow_sample < 1.0 and random.random() >= self._shadow_sample):
            return
        self._shadow_queue.append((request_id, text))
        if len(self._shadow_queue) == SHADOW_MAX_BATCH:  # full: no need to wait for more
            if self._shadow_scheduled is not None:
                self._shadow_scheduled.cancel()
            self._shadow_scheduled = asyncio.get_running_loop().call_soon(self._shadow_drain)
        elif self._shadow_scheduled is None:
            self._shadow_scheduled = asyncio.get_running_loop().call_later(SHADOW_DELAY_S, self._shadow_drain)

    async def _durable(self, result, acks: list, endpoint: str, ctx: bentoml.Context | None = None):
        """``result`` once every event of this request is committed (durable acks), else 503 with
        Retry-After and the reason; never longer than ``events_ack_timeout_s``."""
        if not settings.events_durable:
            return result
        from botkit.serving.events import StoreUnavailable

        try:
            await self.writer.wait_committed(acks, settings.events_ack_timeout_s)
        except StoreUnavailable as exc:
            return self._unavailable(exc.reason, exc.retry_after_s, endpoint, ctx)
        return result

    def _unavailable(self, reason: str, retry_after_s: int, endpoint: str, ctx: bentoml.Context | None = None):
        self.metrics.events.unavailable_total.labels(endpoint=endpoint).inc()
        if ctx is not None:
            ctx.response.status_code = 503
        return problem(503, detail=f"not stored, try again: {reason}", headers={"Retry-After": str(retry_after_s)})

    def _shadow_events(self) -> list:
        """One shadow predict for up to SHADOW_MAX_BATCH queued messages; a failure is recorded too."""
        from botkit.serving.events import ShadowEvent

        batch = self._shadow_queue[:SHADOW_MAX_BATCH]
        del self._shadow_queue[:SHADOW_MAX_BATCH]
        tag, now = self.shadow.tag, time.time()
        if not batch:
            return []
        try:
            preds = self.shadow.model.predict([t for _, t in batch])
            return [ShadowEvent(ts=now, request_id=rid, model_version=tag, intent=str(p.intent),
                                confidence=float(p.confidence), fallback=bool(p.fallback))
                    for (rid, _), p in zip(batch, preds, strict=True)]
        except Exception as exc:  # the report counts these as "shadow failed"
            log.warning("shadow model failed on %d messages: %s", len(batch), type(exc).__name__)
            return [ShadowEvent(ts=now, request_id=rid, model_version=tag) for rid, _ in batch]

    def _shadow_drain(self) -> None:
        """Write the shadow's answers without waiting for them; the next batch gets its own loop turn."""
        for event in self._shadow_events():
            self.writer.submit(event)
        loop, left = asyncio.get_running_loop(), len(self._shadow_queue)
        self._shadow_scheduled = (None if not left else loop.call_soon(self._shadow_drain) if left >= SHADOW_MAX_BATCH
                                  else loop.call_later(SHADOW_DELAY_S, self._shadow_drain))

    async def _injected_delay(self, ctx: bentoml.Context | None) -> None:
        """Fault drill: sleep for ``X-Botkit-Delay-Ms`` when enabled and the caller is on loopback;
        fail a share ``X-Botkit-Error-Ratio`` (0-1) of requests with a 500 (canary error drill)."""
        if not self._fault_injection or ctx is None:
            return
        raw = ctx.request.headers.get(FAULT_HEADER)
        client = ctx.request.client
        if client is None or client.host not in ("127.0.0.1", "::1"):
            return
        ratio = ctx.request.headers.get(FAULT_ERROR_HEADER)
        if ratio and random.random() < float(ratio):
            raise RuntimeError("injected error (fault drill)")
        if not raw:
            return
        try:
            delay_ms = min(float(raw), FAULT_MAX_DELAY_MS)
        except ValueError:
            return
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def _remember(self, rid: str, session_id: str | None = None) -> None:
        self._recent[rid] = (session_id,) if session_id else ()
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
        with self.fairness.interactive():
            if self._batching:
                pred = await self.batcher.submit(message)
            else:
                pred = self._predict_batch([message])[0]
        acks: list = []
        session_id = pseudonym(session_id)  # only the keyed pseudonym is stored (botkit.serving.privacy)
        return await self._durable(self._answer(message, pred, session_id, started, acks), acks, "/chat", ctx)

    @bentoml.api(route="/chat_batch", input_spec=ChatBatchRequest)
    async def chat_batch(self, messages: list[str], session_id: str | None = None,
                         *, ctx: bentoml.Context = None) -> list[ChatResponse]:
        """Answer many messages in one call (one predict for all of them)."""
        if not await self._wait_ready():
            return self._not_ready(ctx)
        started = time.perf_counter()
        await self._injected_delay(ctx)
        if sum(map(len, messages)) > settings.max_batch_chars:
            if ctx is not None:
                ctx.response.status_code = 413
            return problem(413, detail=f"batch over {settings.max_batch_chars} characters in total")
        # Predict and redact off the event loop, in chunks, one batch at a time, giving way to single
        # chats: redacting 256 messages on the loop stalled /livez and every /chat of this worker.
        preds, redacted = await self.fairness.map(messages, self._predict_redact)
        session_id = pseudonym(session_id)
        acks: list = []
        answers = []
        for i, (t, p, r) in enumerate(zip(messages, preds, redacted, strict=True)):
            if i and not i % self.fairness.chunk:
                await asyncio.sleep(0)  # let single chats and probes in between
            answers.append(self._answer(t, p, session_id, started, acks, redacted=r))
        return await self._durable(answers, acks, "/chat_batch", ctx)

    def _predict_redact(self, messages: list[str]) -> tuple[list, list[str]]:
        from botkit.core.redact import redact

        return self._predict_batch(messages), [redact(m) for m in messages]

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
            return problem(422, detail=f"unknown intent {correct_intent!r}", known_intents=sorted(known))
        known_request = await self._known_request(request_id)
        if known_request is None:
            return self._unavailable("event store not answering (cannot check request_id)", 1, "/feedback")
        if not known_request:
            return problem(404, detail=f"unknown request_id {request_id!r}")
        refused = await self._feedback_refused(request_id)
        if refused is not None:
            return refused
        ack = self.writer.commit_future(FeedbackEvent(ts=time.time(), request_id=request_id, rating=rating,
                                                      correct_intent=correct_intent,
                                                      comment=redact(comment) if comment else None))
        self.metrics.feedback.labels(rating=rating).inc()
        return await self._durable(FeedbackResponse(accepted=True, request_id=request_id), [ack], "/feedback")

    async def _feedback_refused(self, request_id: str):
        """429 when the rated answer's session sent too much feedback, 409 when the answer was rated
        already (botkit.serving.feedback_gate); None to go ahead."""
        loop = asyncio.get_running_loop()
        recent = self._recent.get(request_id)
        try:
            if recent is None:
                chat = await loop.run_in_executor(self._store_reads, self.writer.store.get_chat, request_id)
                session = chat.session_id if chat is not None else None
            else:
                session = recent[0] if recent else None
            wait = self.feedback_gate.session_wait(session)
            if wait > 0:
                return problem(429, detail="feedback rate limit per session",
                               headers={"Retry-After": str(int(wait) + 1)})
            if not await loop.run_in_executor(self._store_reads, self.feedback_gate.claim, request_id):
                return problem(409, detail="this answer has feedback already (one per request_id)")
        except Exception as exc:  # the claim store is down: refuse rather than count twice
            return self._unavailable(f"feedback claims not answering ({type(exc).__name__})", 1, "/feedback")
        return None

    async def _known_request(self, request_id: str) -> bool | None:
        """This worker's recent answers first, then the store (another worker or replica may have
        answered). None when the store does not answer within ``events_ack_timeout_s``: lookups run
        on a small pool of their own, so a hung store never fills the default executor."""
        if request_id in self._recent:
            return True
        loop = asyncio.get_running_loop()
        # With durable acks another replica's answer is stored before its 200; queued acks need a second look.
        for wait in ((0.0,) if settings.events_durable else (0.0, 0.25)):
            await asyncio.sleep(wait)
            lookup = loop.run_in_executor(self._store_reads, self.writer.store.get_chat, request_id)
            try:
                if await asyncio.wait_for(lookup, settings.events_ack_timeout_s) is not None:
                    return True
            except Exception:  # timeout, connection refused, ...: unknown, not "no such request"
                return None
        return False


# First added is outermost: every error below (and BentoML's own) leaves as problem details; the
# contract answers /docs.json; non-JSON bodies are refused before the size limit reads them.
Chat.add_asgi_middleware(ProblemResponses)
Chat.add_asgi_middleware(TrustGuards)  # Host allow-list, CORS off, optional bearer auth, feedback rate limit
routelabels.install(api.route for api in Chat.apis.values())  # unknown paths count as "other" in /metrics
Chat.add_asgi_middleware(ServeOpenAPI)
Chat.add_asgi_middleware(JsonOnly, paths=tuple(api.route for api in Chat.apis.values()))
Chat.add_asgi_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
if settings.cancel_request_timers:  # BentoML keeps a 30 s timer alive per answered request (timeouts.py)
    cancel_finished_timers()


def openapi_document(url: str) -> dict:
    """The live OpenAPI document (for tests and docs)."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/docs.json", timeout=10) as r:
        return json.loads(r.read())
