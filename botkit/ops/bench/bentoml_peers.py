"""BentoML services that are peers in ``make bench``: BentoML's own batching, and a no-model ceiling.

Both run like botkit's service (``settings.workers`` workers, access log and OpenTelemetry off), so
the rows differ only in what the benchmark compares:

- ``BatchableChat``: what a BentoML user would write to batch, ``@bentoml.api(batchable=True)``.
  A batchable API takes a list, so a request is ``{"message": ["text"]}`` and the answer a list of one.
  ``max_latency_ms=1000``: FACTS.md measured 57-98 % ``503`` answers at 20 ms under 50 users.
- ``Ceiling``: parses the same ``ChatRequest`` and returns a constant ``ChatResponse`` (the model's
  answer to one message, computed at start): what botkit's HTTP stack (BentoML with botkit's GC and
  timer settings) costs here with no model work.
"""

from __future__ import annotations

import os

import bentoml

from botkit.core.config import settings
from botkit.serving.schemas import ChatRequest, ChatResponse
from botkit.serving.timeouts import cancel_finished_timers

__all__ = ["BATCHABLE_MAX_LATENCY_MS", "BatchableChat", "Ceiling", "constant_response"]

os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # the same as botkit's default (tracing off)
BATCHABLE_MAX_LATENCY_MS = 1000
_SERVICE = {"workers": settings.workers, "traffic": {"timeout": 30}, "logging": {"access": {"enabled": False}}}


def constant_response(message: str = "where is my order") -> ChatResponse:
    """The served model's real answer to one message, computed once: the size of a real response."""
    import uuid

    from botkit.core.registry import load_model

    cfg = settings.from_env()
    loaded = load_model(cfg.model_tag or None, cfg.model_name)
    pred = loaded.model.predict_one(message)
    rid = uuid.uuid4().hex
    return ChatResponse(request_id=rid, intent=pred.intent, confidence=pred.confidence,
                        reply=loaded.model.reply(pred, rid), fallback=pred.fallback,
                        model_version=loaded.tag, latency_ms=1.234)


@bentoml.service(name="bench-batchable", **_SERVICE)
class BatchableChat:
    """The model behind BentoML's adaptive batching."""

    def __init__(self) -> None:
        from botkit.core.registry import load_model

        cfg = settings.from_env()
        self.loaded = load_model(cfg.model_tag or None, cfg.model_name)
        self.loaded.model.predict(["hello", "where is my order"])

    @bentoml.api(route="/chat", batchable=True, max_batch_size=64, max_latency_ms=BATCHABLE_MAX_LATENCY_MS)
    def chat(self, message: list[str]) -> list[dict]:
        import time
        import uuid

        t0 = time.perf_counter()
        model = self.loaded.model
        preds = model.predict(message)
        ms = (time.perf_counter() - t0) * 1000
        out = []
        for p in preds:
            rid = uuid.uuid4().hex
            out.append({"request_id": rid, "intent": p.intent, "confidence": p.confidence,
                        "reply": model.reply(p, rid), "fallback": p.fallback,
                        "model_version": self.loaded.tag, "latency_ms": ms})
        return out


if settings.cancel_request_timers:  # as in botkit's service: the ceiling is botkit's stack without the model
    cancel_finished_timers()


@bentoml.service(name="bench-ceiling", **_SERVICE)
class Ceiling:
    """No model: parse the request, answer a constant."""

    def __init__(self) -> None:
        from botkit.serving.gctune import tune

        self._answer = constant_response()
        cfg = settings.from_env()
        tune(freeze=cfg.gc_freeze, gen0_threshold=cfg.gc_gen0_threshold, observe=False)  # botkit's GC settings

    @bentoml.api(route="/chat", input_spec=ChatRequest, output_spec=ChatResponse)
    async def chat(self, message: str, session_id: str | None = None) -> ChatResponse:
        return self._answer
