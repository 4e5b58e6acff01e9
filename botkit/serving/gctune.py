"""Garbage-collector settings for a serving worker, and its pauses as a Prometheus histogram.

Measured (``make profile``, 64 users on 2 cores): a worker that has loaded BentoML, scikit-learn
and the model holds ~200,000 tracked objects. Generation-2 collections walk all of them, and under
load they were triggered again and again by objects that every request leaves alive for a while
(BentoML's 30 s timeout timers, see ``timeouts.py``), each one stopping the event loop for
45-130 ms of CPU. ``gc.freeze()`` once the model is loaded moves everything alive at that point
into a permanent generation that collections skip; a larger generation-0 threshold lets more
short-lived request objects die before their first collection. Settings: ``BOTKIT_GC_FREEZE``,
``BOTKIT_GC_GEN0_THRESHOLD`` (0: Python's default, 700).
"""

from __future__ import annotations

import gc
import time

__all__ = ["GCPauses", "tune"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


def tune(*, freeze: bool, gen0_threshold: int, observe: bool = True) -> GCPauses | None:
    """Apply the settings once the worker's long-lived state (model, caches) is built.

    ``observe``: also export every collection's pause as ``botkit_gc_pause_seconds{generation}``
    (a callback per collection: a few microseconds).
    """
    if gen0_threshold > 0:
        _, g1, g2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, g1, g2)
    if freeze:
        gc.collect()
        gc.freeze()
    return GCPauses() if observe else None


class GCPauses:
    """Times every collection into a Prometheus histogram (multiprocess-safe: create it in the worker)."""

    def __init__(self) -> None:
        import prometheus_client as pc

        self.histogram = pc.Histogram("botkit_gc_pause_seconds", "Garbage-collection pauses, by generation.",
                                      ["generation"], buckets=_BUCKETS)
        self._children = {g: self.histogram.labels(generation=str(g)) for g in (0, 1, 2)}
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self._children[info["generation"]].observe(time.perf_counter() - self._t0)

    def close(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
