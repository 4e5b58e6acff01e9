"""LitServe as a peer in ``make bench``: the same model behind LitServe's own batching, 2 workers.

Run: ``python -m botkit.ops.bench.litserve_peer 127.0.0.1 8000 [WORKERS=2 MAX_BATCH=32 BATCH_TIMEOUT_S=0.002]``.
Batch size 32 and a 2 ms timeout are LitServe's documented way to batch on CPU; ``/readyz`` is its
health check (answers once every worker has run ``setup``).
"""

from __future__ import annotations

import sys
import time
import uuid

import litserve as ls

from botkit.core.config import settings

__all__ = ["ChatAPI", "main"]


class ChatAPI(ls.LitAPI):
    """``/chat``: ``{"message": str}`` in, botkit's ``ChatResponse`` fields out."""

    def setup(self, device: str) -> None:
        from botkit.core.registry import load_model

        cfg = settings.from_env()
        self.loaded = load_model(cfg.model_tag or None, cfg.model_name)
        self.model = self.loaded.model
        self.model.predict(["hello", "where is my order"])

    def decode_request(self, request: dict, **kwargs) -> str:
        return request["message"]

    def batch(self, inputs: list[str]) -> list[str]:
        return list(inputs)

    def predict(self, x: list[str], **kwargs) -> list[dict]:
        t0 = time.perf_counter()
        preds = self.model.predict(x)
        ms = (time.perf_counter() - t0) * 1000
        out = []
        for p in preds:
            rid = uuid.uuid4().hex
            out.append({"request_id": rid, "intent": p.intent, "confidence": p.confidence,
                        "reply": self.model.reply(p, rid), "fallback": p.fallback,
                        "model_version": self.loaded.tag, "latency_ms": ms})
        return out

    def unbatch(self, output: list[dict]) -> list[dict]:
        return output

    def encode_response(self, output: dict, **kwargs) -> dict:
        return output


def main(argv: list[str] | None = None) -> None:
    """``HOST PORT [WORKERS [MAX_BATCH [BATCH_TIMEOUT_S]]]`` (positional: the one CLI parser lives in botkit.cli)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        raise SystemExit(f"usage: python -m botkit.ops.bench.litserve_peer {main.__doc__.split('`')[2]}")
    defaults = ["127.0.0.1", "8000", "2", "32", "0.002"]
    host, port, workers, max_batch, timeout = args + defaults[len(args):]
    api = ChatAPI(max_batch_size=int(max_batch), batch_timeout=float(timeout), api_path="/chat")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=int(workers), healthcheck_path="/readyz",
                          timeout=30)
    server.run(host=host, port=int(port), log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
