"""The service a user would write without botkit: FastAPI on uvicorn, a plain ``def``.

It is the baseline of ``make bench`` (with 1 worker, and with as many workers as botkit's default
for the same-cores ratio): same model, same request and response shape as ``/chat``, none of
the serving work (no batching, no events, no metrics, no validation limits).
Run: ``uvicorn botkit.ops.naive:app --factory --host 127.0.0.1 --port 8000 [--workers 2]``.
"""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI
from pydantic import BaseModel

from botkit.core.config import settings

__all__ = ["app"]


class ChatIn(BaseModel):
    message: str
    session_id: str | None = None


def app() -> FastAPI:
    from botkit.core.registry import load_model

    loaded = load_model(settings.model_tag or None, settings.model_name)
    model = loaded.model
    api = FastAPI(title="naive chat bot")

    @api.get("/readyz")
    def ready() -> dict:
        return {"ok": True}

    @api.post("/chat")
    def chat(req: ChatIn) -> dict:
        t0 = time.perf_counter()
        pred = model.predict_one(req.message)
        rid = uuid.uuid4().hex
        return {"request_id": rid, "intent": pred.intent, "confidence": pred.confidence,
                "reply": model.reply(pred, rid), "fallback": pred.fallback, "model_version": loaded.tag,
                "latency_ms": (time.perf_counter() - t0) * 1000}

    return api
