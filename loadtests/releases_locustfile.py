"""Canary and rollout traffic for Locust: labelled questions, honest feedback, optional drill headers.

Run by :mod:`botkit.ops.releases.traffic` as a subprocess (Locust patches the process it runs in).
Each user asks a question from the data set's test split and, with ``RELEASES_FEEDBACK_PROB``,
rates the answer: ``down`` when the answered intent is not the labelled one, else ``up``, so the
negative-feedback rate measures a model's real mistakes. ``RELEASES_HEADERS`` (JSON) adds headers
to every chat, e.g. the fault-injection headers of the latency and error drills.
"""

from __future__ import annotations

import json
import os
import random

from locust import FastHttpUser, constant, task

from botkit.core.data import load

_EXAMPLES = load(os.environ.get("RELEASES_DATA") or None).test
_HEADERS = {"content-type": "application/json", **json.loads(os.environ.get("RELEASES_HEADERS") or "{}")}
_FEEDBACK = float(os.environ.get("RELEASES_FEEDBACK_PROB", "0.2"))


class ReleaseUser(FastHttpUser):
    """One closed-loop user; ``RELEASES_WAIT_S`` between requests (default 0.05 s)."""

    wait_time = constant(float(os.environ.get("RELEASES_WAIT_S", "0.05")))

    @task
    def ask(self) -> None:
        text, intent = random.choice(_EXAMPLES)
        with self.client.post("/chat", data=json.dumps({"message": text}), headers=_HEADERS,
                              name="/chat", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return
            body = r.json()
        if random.random() < _FEEDBACK:
            rating = "up" if body.get("intent") == intent else "down"
            self.client.post("/feedback", data=json.dumps({"request_id": body["request_id"], "rating": rating}),
                             headers={"content-type": "application/json"}, name="/feedback")
