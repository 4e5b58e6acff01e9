"""Realistic chat sessions against botkit's service, with load shapes and an SLO gate.

Each simulated user holds conversations: a greeting, one to three questions, now and then a
rating of one of the answers (``POST /feedback``), and a goodbye; sometimes a returning user
just asks one question. Questions are the held-out test split of the bundled data set,
in-scope and out-of-scope ("oos") as they come, so the model sees text it was not trained
on and the fallback path gets its share.

Why load the data through ``botkit.core.data`` instead of a JSON file next to this one: the
locustfile runs in the project's environment anyway (it also uses ``botkit.ops.loadtest`` for
the SLO figures), so there is no second copy to regenerate when the data changes, and a
different data set is one variable away (``LOADTEST_DATA``, any path ``botkit.core.data.load``
reads). Loading and validating ~700 test utterances takes a few milliseconds per process.

Options (command line, or the environment variable in brackets; distributed workers receive
them from the master):
  --think-time S      mean pause between a user's messages, uniform in [S/2, 3S/2];
                      0 is the no-think-time benchmark mode [LOADTEST_THINK_TIME, default 1]
  --feedback-prob P   chance that a conversation ends with a rating [LOADTEST_FEEDBACK_PROB, 0.3]
  --max-questions N   questions per conversation, 1..N [LOADTEST_MAX_QUESTIONS, 3]
  --shape NAME        step | spike | soak, see shapes.py; unset: plain -u/-r/-t [LOADTEST_SHAPE]
  --slo PATH          thresholds file [LOADTEST_SLO, default slo.yaml next to this file]

Run: ``locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:3000 -u 10 -r 5 -t 30s``
(see loadtests/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import locust.stats
from locust import FastHttpUser, events, task
from locust.runners import WorkerRunner

from botkit.core.data import OOS, load
from botkit.ops.loadtest import check_slo, load_slo, slo_met_line, summarize_stats

HERE = Path(__file__).resolve().parent
log = logging.getLogger("loadtest")


def _load_shapes_module():
    """shapes.py as a module object: a shape *class* bound in this namespace would be auto-selected."""
    spec = importlib.util.spec_from_file_location("botkit_loadtest_shapes", HERE / "shapes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


shapes = _load_shapes_module()

# The history CSV is flushed every 5 s by default; a caller that follows it for progress
# (botkit.ops.loadtest.run_loadtest) wants fresher rows. A Locust module constant, read at each flush.
locust.stats.CSV_STATS_FLUSH_INTERVAL_SEC = float(os.environ.get("LOADTEST_CSV_FLUSH_S", 2))


# ---------------------------------------------------------------------------------------- messages


def _messages() -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Greetings, goodbyes and (question, true intent) pairs from the held-out test split."""
    ds = load(os.environ.get("LOADTEST_DATA") or None)
    test = ds.test
    greetings = [t for t, y in test if y == "greeting"] or ["hello", "hi there"]
    goodbyes = [t for t, y in test if y in ("goodbye", "thanks")] or ["bye", "thanks, bye"]
    questions = [(t, y) for t, y in test if y not in ("greeting", "goodbye", "thanks")]
    return greetings, goodbyes, questions


GREETINGS, GOODBYES, QUESTIONS = _messages()
OOS_SHARE = sum(y == OOS for _, y in QUESTIONS) / max(len(QUESTIONS), 1)
_IDS = re.compile(r"[0-9a-f]{12,}")


# ---------------------------------------------------------------------------------------- options


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    # parser.add_argument, not an argument group: only Locust's own method knows include_in_web_ui.
    g = parser
    g.add_argument("--think-time", type=float, default=1.0, env_var="LOADTEST_THINK_TIME",
                   help="mean seconds between a user's messages; 0 = no think time (benchmarks)")
    g.add_argument("--feedback-prob", type=float, default=0.3, env_var="LOADTEST_FEEDBACK_PROB",
                   help="probability that a conversation ends with a rating on one answer")
    g.add_argument("--max-questions", type=int, default=3, env_var="LOADTEST_MAX_QUESTIONS",
                   help="each conversation asks 1..N questions")
    g.add_argument("--shape", default="", choices=["", *shapes.SHAPES], env_var="LOADTEST_SHAPE",
                   include_in_web_ui=False, help="load shape (step, spike, soak); unset: -u/-r/-t as usual")
    g.add_argument("--slo", default=str(HERE / "slo.yaml"), env_var="LOADTEST_SLO", include_in_web_ui=False,
                   help="SLO thresholds file checked when Locust quits")


def _opt(env: Any, name: str, default: Any) -> Any:
    opts = getattr(env, "parsed_options", None)
    value = getattr(opts, name, None) if opts is not None else None
    return default if value is None else value


# ---------------------------------------------------------------------------------------- the user


class ChatUser(FastHttpUser):
    """A shopper talking to the bot; request names are grouped per endpoint ("/chat", "/feedback")."""

    def wait_time(self) -> float:
        """Think time, read per call so workers use the value the master sent them."""
        mean = float(_opt(self.environment, "think_time", 1.0))
        return random.uniform(0.5 * mean, 1.5 * mean) if mean > 0 else 0.0

    @task(8)
    def conversation(self) -> None:
        """Greeting, 1..N questions, maybe a rating, goodbye: one session id throughout."""
        sid = uuid.uuid4().hex
        self.say(random.choice(GREETINGS), sid)
        answered: list[tuple[dict, str]] = []
        for _ in range(random.randint(1, max(1, int(_opt(self.environment, "max_questions", 3))))):
            self.wait()
            text, intent = random.choice(QUESTIONS)
            if (answer := self.say(text, sid)) is not None:
                answered.append((answer, intent))
        if answered and random.random() < float(_opt(self.environment, "feedback_prob", 0.3)):
            self.wait()
            self.rate(*random.choice(answered))
        self.wait()
        self.say(random.choice(GOODBYES), sid)

    @task(2)
    def quick_question(self) -> None:
        """A returning user with one question and no small talk."""
        text, _ = random.choice(QUESTIONS)
        self.say(text, uuid.uuid4().hex)

    # -------------------------------------------------------------------- requests
    def say(self, text: str, session_id: str) -> dict | None:
        return self._post("/chat", {"message": text, "session_id": session_id},
                          ("request_id", "intent", "confidence", "reply", "fallback"))

    def rate(self, answer: dict, true_intent: str) -> dict | None:
        """Thumbs up when the bot got the intent right, else down with the right intent (feeds retraining)."""
        if answer["intent"] == true_intent:
            body: dict[str, Any] = {"request_id": answer["request_id"], "rating": "up"}
        else:
            body = {"request_id": answer["request_id"], "rating": "down", "correct_intent": true_intent,
                    "comment": "that was not what I asked"}
        return self._post("/feedback", body, ("accepted",))

    def _post(self, path: str, payload: dict, required: tuple[str, ...]) -> dict | None:
        """POST and check: a non-2xx status, non-JSON body or missing field is a failure with its reason."""
        with self.client.post(path, json=payload, name=path, catch_response=True) as resp:
            if not resp.status_code:  # no HTTP answer at all: refused, reset, timed out
                resp.failure(f"connection error: {_short(repr(resp.error))}")
                return None
            if not 200 <= resp.status_code < 300:
                resp.failure(f"HTTP {resp.status_code}: {_short(resp.text)}")
                return None
            try:
                body = resp.json()
            except (ValueError, TypeError):
                resp.failure(f"bad JSON: {_short(resp.text)}")
                return None
            missing = [k for k in required if k not in body] if isinstance(body, dict) else list(required)
            if missing:
                resp.failure(f"bad JSON: missing {', '.join(missing)}")
                return None
            return body


def _short(text: str | None) -> str:
    """A failure reason that groups well: ids masked, one line, bounded."""
    return _IDS.sub("<id>", " ".join((text or "<no body>").split()))[:100]


# ---------------------------------------------------------------------------------------- shape + SLO

_state: dict[str, Any] = {"requests": 0, "slo": None}


@events.init.add_listener
def _setup(environment: Any, runner: Any = None, **_: Any) -> None:
    """On the master (or a local run): install the chosen shape and read the SLO file, failing early."""
    if isinstance(runner, WorkerRunner):
        return
    opts = environment.parsed_options
    _state["slo"] = load_slo(_opt(environment, "slo", HERE / "slo.yaml"))
    name = _opt(environment, "shape", "")
    if name:
        shape = shapes.make(name, users=getattr(opts, "num_users", None), duration_s=getattr(opts, "run_time", None),
                            spawn_rate=getattr(opts, "spawn_rate", None))
        shape.runner = runner
        environment.shape_class = shape
        log.info("load shape: %s", shape.describe())


@events.request.add_listener
def _count(**_: Any) -> None:
    _state["requests"] += 1


@events.quitting.add_listener
def _gate(environment: Any, **_: Any) -> None:
    """SLO gate: one line per broken threshold and exit code 1, else "SLO met" and exit code 0."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):  # workers report what they sent, so a run can show all took part
        print(f"loadtest worker {runner.worker_index} sent {_state['requests']} requests", file=sys.stderr,
              flush=True)
        return
    for err in environment.stats.errors.values():  # complete, unlike _failures.csv (misses the last second)
        e = err.to_dict()
        print("loadtest failure " + json.dumps({k: e[k] for k in ("method", "name", "error", "occurrences")}),
              file=sys.stderr, flush=True)
    slo = _state["slo"] or load_slo(_opt(environment, "slo", HERE / "slo.yaml"))
    summary = summarize_stats(e.serialize() for e in environment.stats.entries.values())
    broken = check_slo(summary, slo)
    for line in broken:
        print(line, file=sys.stderr, flush=True)
    if broken:
        environment.process_exit_code = 1
    else:
        print(slo_met_line(summary), file=sys.stderr, flush=True)
        if runner is not None and not runner.exceptions:  # a crashing locustfile still fails the run
            environment.process_exit_code = 0
