"""The bot's Prometheus metrics, next to BentoML's own (multiprocess-safe: created inside each worker)."""

from __future__ import annotations

__all__ = ["BotMetrics", "EventMetrics"]


class BotMetrics:
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
        self.events = EventMetrics(pc)
        info = pc.Gauge("botkit_model_info", "The model this worker serves (value is always 1).",
                        ["model_version"], multiprocess_mode="max")
        info.labels(model_version=model_version).set(1)


class EventMetrics:
    """What the event writer does, so that loss is visible: queue depth, commits, retries, drops, 503s.

    It is the writer's observer (``botkit.serving.events.WriterObserver``): the writer thread calls it.
    """

    def __init__(self, pc) -> None:
        self.queued = pc.Gauge("botkit_events_queued", "Events accepted and not yet written to the store.",
                               multiprocess_mode="livesum")
        self.dropped_total = pc.Counter("botkit_events_dropped", "Events refused because the writer queue was full.")
        self.written_total = pc.Counter("botkit_events_written", "Events the store confirmed (group commits).")
        self.retries_total = pc.Counter("botkit_events_retries", "Failed batch writes (each is retried).")
        self.write_seconds = pc.Histogram("botkit_events_write_seconds", "Time of one group commit to the store.",
                                          buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5, 1.0, 2.5))
        self.unavailable_total = pc.Counter(
            "botkit_events_unavailable", "Requests answered 503 because their event was not stored in time.",
            ["endpoint"])
        self.queued.set(0)

    def written(self, events: int, seconds: float, pending: int) -> None:
        self.written_total.inc(events)
        self.write_seconds.observe(seconds)
        self.queued.set(pending)

    def retried(self, pending: int) -> None:
        self.retries_total.inc()
        self.queued.set(pending)

    def dropped(self) -> None:
        self.dropped_total.inc()
