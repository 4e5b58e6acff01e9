"""Drill load for ``botkit cluster drill``: closed-loop chat users that record every answer.

Run by :mod:`botkit.ops.cluster.drills` as a subprocess (Locust patches the process it runs in).
Each answer is written to ``--acks-file`` (one file per Locust process, suffixed with its pid)
as ``status<TAB>request_id<TAB>retry_after<TAB>milliseconds``, so the drill can check that
every chat answered 200 is in the event store. A 503 carrying ``Retry-After`` is what the
service promises when the store cannot take an event: it counts as answered, not as a failure.
"""

from __future__ import annotations

import json
import os
import random
import time

from locust import FastHttpUser, events, task

from botkit.core.data import load

_EXAMPLES = [text for text, _ in load(None).test]
_HEADERS = {"content-type": "application/json"}
_ROWS: list[str] = []


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--acks-file", default="", help="where to write each answer (status, request id, ...)")


@events.quitting.add_listener
def _write(environment, **_: object) -> None:
    path = environment.parsed_options.acks_file
    if path and _ROWS:
        with open(f"{path}.{os.getpid()}", "a", encoding="utf-8") as f:
            f.write("\n".join(_ROWS) + "\n")
        _ROWS.clear()


class DrillUser(FastHttpUser):
    """One closed-loop user with no think time."""

    @task
    def chat(self) -> None:
        started = time.perf_counter()
        with self.client.post("/chat", data=json.dumps({"message": random.choice(_EXAMPLES)}), headers=_HEADERS,
                              name="/chat", catch_response=True) as r:
            ms = (time.perf_counter() - started) * 1000
            rid, retry_after = "", r.headers.get("retry-after") or ""
            if r.status_code == 200:
                rid = r.json().get("request_id", "")
            elif r.status_code == 503 and retry_after:
                r.success()  # the promised answer when the store cannot take the event
            else:
                r.failure(f"HTTP {r.status_code}")
            _ROWS.append(f"{r.status_code}\t{rid}\t{retry_after}\t{ms:.1f}")
