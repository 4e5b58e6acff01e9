"""The fixed load of `make bench`: every user posts one held-out utterance to /chat, no think time.

Kept apart from locustfile.py (realistic sessions) so the benchmark measures serving, not a
scenario, and so the naive FastAPI service and botkit's service get exactly the same requests.
"""

import itertools
import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, task

_FILE = Path(os.environ.get("BENCH_MESSAGES", Path(__file__).with_name("bench_messages.json")))
MESSAGES = json.loads(_FILE.read_text()) if _FILE.exists() else ["where is my order", "hello"]
_cycle = itertools.cycle(MESSAGES)
# BentoML's batchable APIs take a list: {"message": ["text"]}; every other peer takes {"message": "text"}.
_AS_LIST = os.environ.get("BENCH_BODY", "object") == "list"


class ChatUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def chat(self) -> None:
        with self.client.post("/chat", json={"message": [next(_cycle)] if _AS_LIST else next(_cycle)}, name="/chat",
                              catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:80]}")
