"""Workshop support: friendly exercise checks, a machine check for the room, and the feedback summary.

Why a module of its own: in a workshop the first ten minutes and every stuck participant cost
the whole room time. So

* every exercise check returns a :class:`CheckResult` that reads ``✅ done: ...`` or
  ``⏳ not yet: <a hint about exactly what is missing or wrong>`` and **never raises**: a TODO
  left as ``None`` or ``...``, a wrong type, or an exception inside the participant's own code
  all become hints, so a notebook always runs to the end and a facilitator can see at a
  glance where each team is;
* :func:`machine_check` (``botkit workshop check``) answers "is this laptop ready?" in one
  screen of green ✔ / red ✘ lines, each with the reason, before the workshop starts;
* :func:`summarize_feedback` (``botkit workshop feedback summarize FILE``) turns the answers
  of ``workshops/feedback_form_template.csv`` into a Markdown report and a chart the same
  evening, so the next day's blocks can change.

A few helpers keep the exercise notebooks short (:func:`with_new_intents`, :func:`run_gate`,
:func:`cpu_meter`, :func:`replay_traffic`, :func:`scrambled`). Heavy imports (BentoML, papermill,
matplotlib) happen inside functions: importing this module is cheap and imports no settings.
Locust is never imported here, only run as a child process (it hangs a Jupyter kernel).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "BOTTLENECKS",
    "FEEDBACK_COLUMNS",
    "FEEDBACK_QUESTIONS",
    "NEW_INTENTS",
    "CheckLine",
    "CheckResult",
    "CpuMeter",
    "FeedbackError",
    "FeedbackSummary",
    "check",
    "check_behaviour_test",
    "check_bottleneck",
    "check_dataset",
    "check_drift_caught",
    "check_gate",
    "check_model_quality",
    "check_promotion_decision",
    "cpu_meter",
    "done",
    "format_lines",
    "is_todo",
    "machine_check",
    "not_yet",
    "replay_traffic",
    "run_botkit",
    "run_gate",
    "scrambled",
    "show_predictions",
    "summarize_feedback",
    "with_new_intents",
]

NEW_INTENTS = ("loyalty_points", "gift_wrapping")
BOTTLENECKS = ("cpu", "workers", "batching")
_TODO_STRINGS = {"", "...", "todo", "tbd", "?"}


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one exercise step; shows itself as its message in a notebook."""

    step: str
    passed: bool
    message: str

    def __repr__(self) -> str:  # the last line of a notebook cell displays the message, once
        return self.message

    __str__ = __repr__

    def __bool__(self) -> bool:
        return self.passed


def done(step: str, detail: str) -> CheckResult:
    """A passed step: ``✅ done: <what was verified>``."""
    return CheckResult(step, True, f"✅ done: {detail}")


def not_yet(step: str, hint: str) -> CheckResult:
    """A missing or wrong step: ``⏳ not yet: <what to do next>``."""
    return CheckResult(step, False, f"⏳ not yet: {hint}")


def is_todo(value: object) -> bool:
    """True for an answer still left open: ``None``, ``...``, ``"TODO"``, or a container holding ``...``."""
    if value is None or value is Ellipsis:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _TODO_STRINGS
    if isinstance(value, Mapping):
        return any(v is Ellipsis for v in value.values())
    if isinstance(value, list | tuple | set):
        return any(v is Ellipsis for v in value)
    return False


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


def _safe(step: str) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Last line of defence: a bug or an odd input inside a check becomes a hint, never a traceback."""

    def wrap(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # the whole point: a check never raises
                return not_yet(step, f"the check could not read your answer ({_short(exc)}). Run the cells "
                                     "above from the top (Kernel → Restart and Run All) and try again.")
        return inner

    return wrap


def check(name: str, fn: Callable[[], object] | None, *, hint: str = "") -> CheckResult:
    """Run ``fn()`` as a check: ``assert`` messages and exceptions become hints.

    ``fn`` passes when it returns anything but ``False``. Use it for a step no dedicated check
    covers: ``check("audit log has the decision", lambda: log.entries()[-1]["action"] == "reject")``.
    """
    if is_todo(fn):
        return not_yet(name, hint or f"{name}: nothing to check yet; fill in the TODO above")
    if not callable(fn):
        return not_yet(name, f"{name}: expected a function to call, got {type(fn).__name__}")
    try:
        value = fn()
    except AssertionError as exc:
        return not_yet(name, f"{name}: {str(exc) or hint or 'an assertion failed'}")
    except Exception as exc:
        return not_yet(name, f"{name}: {_short(exc)}" + (f". {hint}" if hint else ""))
    if value is False:
        return not_yet(name, f"{name}: {hint or 'the condition is not met yet'}")
    return done(name, name)


# --------------------------------------------------------------------- exercise 01: data and quality


def with_new_intents(ds: Any, examples: Mapping[str, Sequence[str] | None], *,
                     replies: Mapping[str, Sequence[str]] | None = None) -> Any:
    """A copy of ``ds`` with new intents: per intent 2 sentences to val, 2 to test, the rest to train.

    Returns None (and says why) while any list is still a TODO, so the notebook runs on.
    The result is not validated here: :func:`check_dataset` does that and explains failures.
    """
    from botkit.core.data import SPLITS, Dataset

    missing = [name for name, texts in examples.items() if is_todo(texts)]
    if missing:
        print(f"⏳ not yet: write the example sentences for {', '.join(missing)} first")
        return None
    splits = {s: list(ds.split(s)) for s in SPLITS}  # a copy: the original data set stays as it was
    for intent, texts in examples.items():
        texts = [str(t) for t in texts]
        splits["val"] += [(t, intent) for t in texts[:2]]
        splits["test"] += [(t, intent) for t in texts[2:4]]
        splits["train"] += [(t, intent) for t in texts[4:]]
    all_replies = {k: list(v) for k, v in ds.replies.items()}
    all_replies.update({k: list(v) for k, v in (replies or {}).items()})
    return Dataset(f"{ds.name}+{'+'.join(examples)}", splits, all_replies, list(ds.fallback_replies),
                   source=f"{ds.source or ds.name} + workshop intents")


@_safe("dataset")
def check_dataset(ds: Any, *, new_intents: Sequence[str] = NEW_INTENTS, base: Any = None,
                  min_train: int = 5, min_test: int = 2) -> CheckResult:
    """Is ``ds`` a valid copy of the data with enough sentences for each new intent in every split?"""
    from botkit.core.data import SPLITS, DataError, Dataset, normalize

    step = "dataset"
    if is_todo(ds):
        return not_yet(step, "the new data set is still empty: fill in the example sentences and run the "
                             "cell that builds it")
    if not isinstance(ds, Dataset):
        return not_yet(step, f"expected a botkit Dataset, got {type(ds).__name__}: build it with "
                             "workshop.with_new_intents(ds, {...}) or botkit.core.data.Dataset(...)")
    try:
        ds.validate()
    except DataError as exc:
        msg = str(exc)
        advice = ""
        if "too few" in msg:
            advice = (f" Write at least {min_train + 4} sentences per new intent (10 is better): 2 go to val, "
                      f"2 to test, the rest (at least {min_train}) to train.")
        elif "leakage" in msg:
            advice = " Every sentence may appear once only: change or remove the duplicate."
        elif "empty text" in msg:
            advice = " Remove the empty string from your list."
        return not_yet(step, f"the data set does not validate: {msg}.{advice}")
    if base is not None and hasattr(base, "intents"):
        lost = sorted(set(base.intents) - set(ds.intents))
        if lost:
            return not_yet(step, f"{len(lost)} of the original intents are gone ({', '.join(lost[:3])}...): add "
                                 "the new intents to a copy of the data, do not replace it")
    counts = {s: Counter(y for _, y in ds.split(s)) for s in SPLITS}
    for intent in new_intents:
        n_train, n_val, n_test = (counts[s][intent] for s in SPLITS)
        if n_train == 0:
            return not_yet(step, f"{intent!r} has no training sentences: is the name spelled exactly "
                                 f"{intent!r}? Intents found: ...{', '.join(ds.intents[-4:])}")
        if n_train < min_train:
            return not_yet(step, f"{intent!r} has {n_train} training sentences; the model needs at least "
                                 f"{min_train}: write more (with typos and different wordings)")
        if n_test < min_test:
            return not_yet(step, f"{intent!r} has {n_test} test sentence(s): with fewer than {min_test} its "
                                 "quality cannot be measured")
        if n_val == 0:
            return not_yet(step, f"{intent!r} has no validation sentence: the fallback threshold is tuned on val")
    labels: dict[str, set[str]] = {}
    for s in SPLITS:
        for text, intent in ds.split(s):
            labels.setdefault(normalize(text), set()).add(intent)
    clash = next((t for t, ys in labels.items() if len(ys) > 1 and set(new_intents) & ys), None)
    if clash:
        return not_yet(step, f"{clash!r} is labelled {' and '.join(sorted(labels[clash]))}: one sentence, "
                             "one intent; decide which one it is")
    parts = ", ".join(f"{i} {counts['train'][i]}/{counts['val'][i]}/{counts['test'][i]}" for i in new_intents)
    return done(step, f"data set {ds.name!r} validates: {len(ds.intents)} intents; {parts} "
                      "train/val/test sentences")


def _metrics_of(metrics: Any) -> dict | None:
    if hasattr(metrics, "metrics") and isinstance(metrics.metrics, dict):  # an Evaluation
        return metrics.metrics
    if hasattr(metrics, "evaluation"):  # a TrainResult
        return metrics.evaluation.metrics
    return metrics if isinstance(metrics, dict) else None


@_safe("model quality")
def check_model_quality(metrics: Any, min_acc: float | None = 0.8, *,
                        intents: Sequence[str] = NEW_INTENTS, min_intent_recall: float = 0.5) -> CheckResult:
    """Does the model reach the quality floor overall, and does it recognise the new intents at all?"""
    step = "model quality"
    if is_todo(metrics):
        return not_yet(step, "no metrics yet: train the model, then metrics = evaluate(model, "
                             "ds_new.test, measure_latency=False).metrics")
    m = _metrics_of(metrics)
    if m is None or "in_scope_accuracy" not in m:
        return not_yet(step, f"expected the metrics dict from evaluate(...).metrics, got {type(metrics).__name__}")
    if is_todo(min_acc):
        return not_yet(step, "choose the floor min_acc: the in-scope accuracy your bot must reach (e.g. 0.8)")
    if not isinstance(min_acc, int | float) or not 0 < float(min_acc) <= 1:
        return not_yet(step, f"min_acc is a share between 0 and 1 (0.8 means 80 %), got {min_acc!r}")
    acc = m.get("in_scope_accuracy")
    per = m.get("per_intent") or {}
    for intent in intents:
        if intent not in per or not per[intent].get("support"):
            return not_yet(step, f"{intent!r} is not in the evaluation: train on ds_new (not ds) and evaluate "
                                 "on ds_new.test, which holds its test sentences")
    if acc is None or acc < min_acc:
        weak = sorted(((k, v["f1"]) for k, v in per.items() if k != "oos" and v.get("support")),
                      key=lambda kv: kv[1])[:3]
        return not_yet(step, f"in-scope accuracy {acc} is below your floor {min_acc}; the weakest intents are "
                             + ", ".join(f"{k} (F1 {f:.2f})" for k, f in weak)
                             + ": more and more varied training sentences for them help")
    for intent in intents:
        rec = per[intent]["recall"]
        if rec < min_intent_recall:
            lost_to = [p["predicted"] for p in m.get("confused_pairs", []) if p["true"] == intent]
            where = f" (its test sentences went to {', '.join(lost_to[:3])})" if lost_to else ""
            return not_yet(step, f"the bot recognises only {rec:.0%} of the {intent!r} test sentences{where}: "
                                 "add training sentences with the words customers use for it")
    detail = ", ".join(f"{i} F1 {per[i]['f1']:.2f}" for i in intents)
    return done(step, f"in-scope accuracy {acc:.3f} reaches your floor {min_acc:g}; {detail}")


def show_predictions(model: Any, texts: Sequence[str]) -> None:
    """Print intent and confidence per text; a friendly line instead of an error while ``model`` is a TODO."""
    if is_todo(model) or not hasattr(model, "predict"):
        print("⏳ not yet: train the model first (model is still a TODO)")
        return
    for text, p in zip(texts, model.predict(list(texts)), strict=True):
        verdict = "fallback" if p.fallback else p.intent
        print(f"{verdict:22} {p.confidence:.2f}  {text}")


# ------------------------------------------------------------------ exercise 02: behaviour and gate


class _Scrambled:
    """A model that ignores meaning: the intent follows a hash of the raw text.

    A behaviour test that passes on it tests nothing, which is how :func:`check_behaviour_test`
    tells a real test from an empty one.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        self.intents = list(getattr(model, "intents", []) or ["greeting", "order_status"])
        self.classes = [*self.intents, "oos"]
        self.threshold = getattr(model, "threshold", 0.5)

    def predict(self, texts: Sequence[str]) -> list:
        from botkit.core.model import Prediction

        out = []
        for text in texts:
            h = zlib.crc32(str(text).encode())
            intent = self.intents[h % len(self.intents)]
            out.append(Prediction(intent, round(0.5 + (h % 500) / 1000, 4), False, intent))
        return out

    def predict_one(self, text: str) -> Any:
        return self.predict([text])[0]

    def reply(self, prediction: Any, key: str = "") -> str:
        return f"(scrambled) {prediction.intent}"


def scrambled(model: Any) -> Any:
    """A stand-in for ``model`` that answers by hashing the text: case, typos and meaning all change it."""
    return _Scrambled(model)


@_safe("behaviour test")
def check_behaviour_test(test_fn: Any, model: Any = None, broken_model: Any = None) -> CheckResult:
    """A good behaviour test passes on the trained model AND fails on a model that ignores meaning."""
    step = "behaviour test"
    if is_todo(test_fn):
        return not_yet(step, "write the test function first (def test_...(model): ... assert ...)")
    if not callable(test_fn):
        return not_yet(step, f"expected a test function, got {type(test_fn).__name__}")
    if is_todo(model) or not hasattr(model, "predict"):
        return not_yet(step, "train the model under test first (it is still a TODO)")
    name = getattr(test_fn, "__name__", "your test")
    try:
        value = test_fn(model)
    except AssertionError as exc:
        why = str(exc) or "an assert failed (add a message to your assert to see which sentence)"
        return not_yet(step, f"{name} fails on the trained model: {why}. Either the model really changes its "
                             "answer there (then you found a bug worth a ticket) or the test expects too much")
    except Exception as exc:
        return not_yet(step, f"{name} crashed on the trained model with {_short(exc)}: a test should fail "
                             "only through assert; call model.predict([...]) with a list of texts")
    if value is False:
        return not_yet(step, f"{name} returned False: a pytest test does not return its verdict, it uses assert")
    broken = broken_model if broken_model is not None else scrambled(model)
    try:
        test_fn(broken)
    except AssertionError as exc:
        caught = str(exc).splitlines()[0][:100] if str(exc) else "an assert failed"
        return done(step, f"{name} passes on the trained model and catches a model that ignores meaning "
                          f"({caught})")
    except Exception as exc:
        return not_yet(step, f"{name} crashed on a different model with {_short(exc)}: use only "
                             "model.predict(texts) and the .intent / .confidence / .fallback of its answers")
    return not_yet(step, f"{name} also passes on a model that answers at random, so it checks nothing yet: "
                         "assert that each original sentence and its variant get the SAME intent "
                         "(is the body still `...`?)")


_METRIC_LINE = re.compile(r"^(in_scope_accuracy|oos_recall)\s+([0-9.]+|n/a)\s*$", re.MULTILINE)


def run_botkit(*args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    """Run ``botkit ARGS`` in a child process, as CI does; prints the command and its exit code.

    Never raises: a timeout or a missing command comes back as exit code 2 with the reason in stderr.
    """
    exe = Path(sys.executable).with_name("botkit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "botkit.cli"]
    print("$ botkit " + " ".join(args))
    try:
        res = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout_s,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        res = subprocess.CompletedProcess([*cmd, *args], 2, "", f"botkit: error: {_short(exc)}")
    print(f"  exit code {res.returncode}")
    return res


def run_gate(tag: str, gate: Mapping[str, float | None] | None) -> subprocess.CompletedProcess | None:
    """``botkit eval --model TAG`` with the floors in ``gate``; None (and a note) while a floor is a TODO."""
    if is_todo(gate) or any(is_todo(v) for v in (gate or {}).values()):
        print("⏳ not yet: set both floors in `gate` first")
        return None
    args = ["eval", "--model", str(tag)]
    for key, flag in (("min_in_scope_accuracy", "--min-in-scope-accuracy"), ("min_oos_recall", "--min-oos-recall")):
        if gate.get(key) is not None:
            args += [flag, f"{float(gate[key]):g}"]
    res = run_botkit(*args)
    for line in (res.stderr or "").splitlines():
        if line.startswith(("GATE FAILED", "botkit: error")):
            print("  " + line)
    return res


def _measured(run: Any) -> str:
    found = dict(_METRIC_LINE.findall(getattr(run, "stdout", "") or ""))
    return ", ".join(f"{k} {v}" for k, v in found.items()) or "see its output"


@_safe("gate")
def check_gate(cmd_result: Any, weak_result: Any = None) -> CheckResult:
    """The gate must pass the good model (exit 0) and, when given, stop the weak one (exit 1)."""
    step = "gate"
    if is_todo(cmd_result):
        return not_yet(step, "set the floors in `gate` and run the gate cell (botkit eval ... --min-...)")
    if not hasattr(cmd_result, "returncode"):
        return not_yet(step, f"expected the result of the botkit eval run, got {type(cmd_result).__name__}")
    if cmd_result.returncode == 2:
        err = (cmd_result.stderr or "").strip().splitlines()
        return not_yet(step, f"botkit eval could not run: {err[-1] if err else 'no message'}")
    if cmd_result.returncode != 0:
        failed = [ln for ln in (cmd_result.stderr or "").splitlines() if ln.startswith("GATE FAILED")]
        return not_yet(step, f"your gate stops the good model too ({'; '.join(failed) or 'exit code 1'}). It "
                             f"measured {_measured(cmd_result)}: set each floor a little below that")
    if weak_result is None:
        return done(step, "the gate passes the good model (exit code 0)")
    if is_todo(weak_result) or not hasattr(weak_result, "returncode"):
        return not_yet(step, "run the gate on the weak model as well")
    if weak_result.returncode == 0:
        return not_yet(step, f"your gate lets the weak model through (it measured {_measured(weak_result)}): "
                             "raise the floors so only a model about as good as the current one passes")
    if weak_result.returncode == 2:
        err = (weak_result.stderr or "").strip().splitlines()
        return not_yet(step, f"botkit eval could not run on the weak model: {err[-1] if err else 'no message'}")
    failed = [ln.removeprefix("GATE FAILED: ") for ln in (weak_result.stderr or "").splitlines()
              if ln.startswith("GATE FAILED")]
    return done(step, "the gate passes the good model (exit 0) and stops the weak one (exit 1: "
                      + ("; ".join(failed) or "a floor is broken") + ")")


# ----------------------------------------------------------------- exercise 03: load and bottleneck


@dataclass
class CpuMeter:
    """CPU a process tree used between start and stop, and how busy the whole machine was.

    ``cores``: average cores the server kept busy; ``machine_cores``: average cores busy on the
    whole machine (the load generator included: on a laptop, Locust competes for the same cores).
    """

    pid: int
    cpu_s: float = 0.0
    wall_s: float = 0.0
    machine_busy_s: float = 0.0

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def machine_cores(self) -> float:
        return self.machine_busy_s / self.wall_s if self.wall_s > 0 else 0.0


def _machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (idle and I/O wait excluded)."""
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _tree_cpu(pid: int, seen: dict[int, float]) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            seen[p.pid] = max(seen.get(p.pid, 0.0), t.user + t.system)


@contextlib.contextmanager
def cpu_meter(process: Any) -> Iterator[CpuMeter]:
    """Measure the CPU a server (a ``Server``, a Popen or a pid) and its workers use inside the block.

    Samples the process tree every 0.5 s, so workers that come and go are counted too.
    """
    import threading

    pid = getattr(getattr(process, "proc", None), "pid", None) or getattr(process, "pid", None)
    if pid is None and isinstance(process, int):
        pid = process
    if pid is None:
        raise ValueError(f"cpu_meter needs a running server, a process or a pid, got {type(process).__name__}; "
                         "start the server first (inside `with Server(...) as server:`)")
    meter = CpuMeter(int(pid))
    before: dict[int, float] = {}
    _tree_cpu(meter.pid, before)
    after = dict(before)
    busy0 = _machine_busy_s()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            _tree_cpu(meter.pid, after)

    th = threading.Thread(target=sample, daemon=True, name="cpu-meter")
    t0 = time.monotonic()
    th.start()
    try:
        yield meter
    finally:
        stop.set()
        th.join(timeout=2)
        _tree_cpu(meter.pid, after)
        meter.wall_s = time.monotonic() - t0
        meter.cpu_s = sum(after.values()) - sum(before.get(p, 0.0) for p in after)
        meter.machine_busy_s = max(0.0, _machine_busy_s() - busy0)


_SYNONYMS = {
    "cpu": "cpu", "cpus": "cpu", "core": "cpu", "cores": "cpu", "processor": "cpu", "compute": "cpu",
    "workers": "workers", "worker": "workers", "processes": "workers", "process": "workers", "gil": "workers",
    "batching": "batching", "batch": "batching", "batches": "batching", "adaptive batching": "batching",
}
_EVIDENCE = {
    "cpu": ("cpu", "core", "%", "saturat", "busy", "load"),
    "workers": ("worker", "core", "gil", "idle", "process", "parallel", "one at a time"),
    "batching": ("batch", "per request", "per-request", "overhead", "vector", "one at a time", "latency", "call"),
}


@_safe("bottleneck")
def check_bottleneck(answer: Any, because: Any = None, observations: Mapping[str, Any] | None = None) -> CheckResult:
    """Accept any of cpu / workers / batching that comes with a reason consistent with the measurements.

    ``answer`` is the choice (or a dict with ``bottleneck`` and ``because``); ``observations``
    may hold ``cores``, ``workers``, ``batching``, ``server_cores_used`` and ``machine_cores_busy``
    from the load test. "cpu" fits when the server, or the whole machine (the load generator
    competes for the same cores on a laptop), kept most cores busy.
    """
    step = "bottleneck"
    if isinstance(answer, Mapping):
        because = answer.get("because", because)
        answer = answer.get("bottleneck")
    if is_todo(answer):
        return not_yet(step, f"choose the bottleneck: one of {', '.join(repr(b) for b in BOTTLENECKS)}")
    choice = _SYNONYMS.get(str(answer).strip().lower())
    if choice is None:
        return not_yet(step, f"{answer!r} is not one of {', '.join(repr(b) for b in BOTTLENECKS)}")
    if is_todo(because):
        return not_yet(step, f"{choice!r} may well be right: now say why, in a sentence that points at a number "
                             "you measured (cores used, requests/s, latency)")
    reason = str(because).strip()
    low = reason.lower()
    if len(reason.split()) < 6:
        return not_yet(step, "give a full sentence of evidence (at least 6 words): which measurement made you "
                             "choose it?")
    if not (re.search(r"\d", low) or any(k in low for k in _EVIDENCE[choice])):
        return not_yet(step, f"your reason does not point at a measurement: mention the number you looked at "
                             f"(e.g. {', '.join(_EVIDENCE[choice][:3])})")
    obs = dict(observations or {})
    cores = obs.get("cores") or os.cpu_count() or 1
    used, workers, batching = obs.get("server_cores_used"), obs.get("workers"), obs.get("batching")
    machine = obs.get("machine_cores_busy")
    machine_full = isinstance(machine, int | float) and machine >= 0.75 * cores
    if choice == "cpu" and isinstance(used, int | float) and used < 0.75 * cores and not machine_full:
        also = f" (the whole machine {machine:.1f})" if isinstance(machine, int | float) else ""
        return not_yet(step, f"the server kept only {used:.1f} of {cores} cores busy on average{also}, so the "
                             "machine's CPU was not used up: what stopped it from using the rest?")
    if choice == "workers" and isinstance(workers, int) and workers >= cores:
        return not_yet(step, f"the service already ran {workers} workers on {cores} cores: more workers than "
                             "cores only adds switching; look at CPU or batching")
    if choice == "batching" and batching is True:
        return not_yet(step, "batching was already on in this run: look at workers or CPU")
    nxt = {"cpu": "a cheaper model, or more machines behind a load balancer",
           "workers": "restart with workers=2 and compare requests/s",
           "batching": "restart with batching=True and compare requests/s"}[choice]
    return done(step, f"{choice!r}, with a reason that points at the measurements. Prove it: {nxt}")


# ------------------------------------------------------------------------- exercise 04: drift


def replay_traffic(store: Any, model: Any, texts: Sequence[str], *, start: float, spacing_s: float = 0.05,
                   model_version: str = "workshop", latency_ms: float = 5.0) -> tuple[float, float]:
    """Write one chat event per text, as the service would, starting at ``start``; returns ``(since, until)``.

    Faster than a live service and repeatable: the monitor cannot tell the difference, because
    it only reads events. Texts are redacted first, like the service does.
    """
    import uuid

    from botkit.core.redact import redact
    from botkit.serving.events import ChatEvent

    texts = [str(t) for t in texts]
    preds = model.predict(texts) if texts else []
    events = [ChatEvent(ts=start + i * spacing_s, request_id=uuid.uuid4().hex, session_id="workshop",
                        text=redact(t), intent=p.intent, confidence=float(p.confidence), fallback=bool(p.fallback),
                        latency_ms=latency_ms + (zlib.crc32(t.encode()) % 100) / 50, model_version=model_version)
              for i, (t, p) in enumerate(zip(texts, preds, strict=True))]
    store.append_many(events)
    return start, start + max(1, len(texts)) * spacing_s


@_safe("drift")
def check_drift_caught(report: Any, answer: Any = None) -> CheckResult:
    """The monitor must flag the shifted window, and ``answer`` must name a check that really flagged."""
    step = "drift"
    if is_todo(report):
        return not_yet(step, "run the monitor on your shifted window: monitor.report(store, since=..., until=..., "
                             "reference=reference, write=False)")
    if not hasattr(report, "checks") or not hasattr(report, "alerts"):
        return not_yet(step, f"expected the MonitorReport that monitor.report() returns, got {type(report).__name__}")
    n = (getattr(report, "counts", None) or {}).get("chats", 0)
    flagged = [c.name for c in report.alerts]
    if not flagged:
        small = f" (only {n} chats in the window; send at least 100)" if n < 100 else ""
        return not_yet(step, "no check flagged this window: to the monitor it looks like normal traffic"
                             f"{small}. Make most messages about topics the bot never saw "
                             "(monitor.NEW_TOPIC_REQUESTS) and report on exactly that window")
    if is_todo(answer):
        return not_yet(step, "the monitor raised alerts: now name one check that flagged (lines marked !! in "
                             "report.summary())")
    names = [answer] if isinstance(answer, str) else list(answer)
    known = {c.name: c for c in report.checks}
    for name in names:
        if name not in known:
            return not_yet(step, f"there is no check called {name!r}; the checks are {', '.join(known)}")
        c = known[name]
        if not c.flagged:
            return not_yet(step, f"{name} did not flag: value {c.value:.4g} against threshold {c.threshold:g} "
                                 f"({c.meaning}). Flagged were: {', '.join(flagged)}")
    c = known[names[0]]
    more = f" (and {len(flagged) - 1} more)" if len(flagged) > 1 else ""
    return done(step, f"{', '.join(names)} flagged{more}: {c.name} {c.value:.4g} vs threshold {c.threshold:g}. "
                      f"{c.meaning}")


# -------------------------------------------------------------------- exercise 05: governance


def _call(expected: Any) -> bool | None:
    if isinstance(expected, bool):
        return expected
    text = str(expected).strip().lower()
    if text in ("promote", "promoted", "approve", "approved", "ship", "yes", "accept"):
        return True
    if text in ("reject", "rejected", "refuse", "block", "no", "deny"):
        return False
    return None


@_safe("promotion decision")
def check_promotion_decision(decision: Any, expected: Any) -> CheckResult:
    """Did the policy decide what you called, and do you see which rules decided it?"""
    step = "promotion decision"
    if is_todo(expected):
        return not_yet(step, "write down your call first: my_call = \"promote\" or \"reject\"")
    call = _call(expected)
    if call is None:
        return not_yet(step, f"my_call must be \"promote\" or \"reject\", got {expected!r}")
    if is_todo(decision):
        return not_yet(step, "apply the policy: decision = governance.decide(candidate.tag, reviewer=reviewer, "
                             "policy=policy)")
    if not hasattr(decision, "approved") or not hasattr(decision, "rules"):
        return not_yet(step, f"expected the Decision that governance.decide() returns, got {type(decision).__name__}")
    failed = [r for r in decision.rules if not r.passed]
    verdict = "APPROVED" if decision.approved else "REJECTED"
    if bool(decision.approved) != call:
        if call and failed:
            if all(r.name == "reviewer" for r in failed):
                return not_yet(step, "the only failed rule is the reviewer: the policy needs a named reviewer "
                                     "(reviewer = \"...\")")
            why = "; ".join(f"{r.name}: {r.detail}" for r in failed)
            return not_yet(step, f"you called promote, the policy says {verdict}: {why}")
        return not_yet(step, f"you called reject, but every rule passed and the policy says {verdict}. Is your "
                             "candidate really weaker than production? Compare their metrics")
    if decision.approved:
        return done(step, f"you called it: {verdict} ({len(decision.rules)} rules passed)")
    why = "; ".join(f"{r.name} ({r.detail})" for r in failed)
    return done(step, f"you called it: {verdict} because {why}")


# ----------------------------------------------------------------------------- machine check


@dataclass(frozen=True)
class CheckLine:
    """One line of ``botkit workshop check``: what, ok or not, and why."""

    name: str
    ok: bool
    detail: str


_PACKAGES = (("bentoml", "bentoml"), ("sklearn", "scikit-learn"), ("papermill", "papermill"),
             ("matplotlib", "matplotlib"), ("jupyterlab", "jupyterlab"))


def _lock_pins() -> dict[str, str]:
    from botkit.core.config import PACKAGE_DIR

    lock = PACKAGE_DIR.parent / "requirements" / "lock.txt"
    pins = {}
    with contextlib.suppress(OSError):
        for line in lock.read_text(encoding="utf-8").splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split("==", 1)
                pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _version_line(module: str, dist: str, version: str, pins: dict[str, str]) -> CheckLine:
    pinned = pins.get(dist)
    if pinned and pinned != version:
        return CheckLine(module, False, f"{dist} {version} is installed but requirements/lock.txt pins {pinned}: "
                                        "run `make setup` (or pip install -r requirements/lock.txt)")
    return CheckLine(module, True, f"{dist} {version}" + (" (as pinned)" if pinned else ""))


def _check_python() -> CheckLine:
    v = sys.version_info
    found = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if (v.major, v.minor) == (3, 11):
        return CheckLine("python", True, found)
    return CheckLine("python", False, f"{found}: botkit needs Python 3.11; create .venv with python3.11 "
                                      "(`make setup PYTHON=python3.11`)")


def _check_package(module: str, dist: str, pins: dict[str, str]) -> CheckLine:
    try:
        importlib.import_module(module)
        version = metadata.version(dist)
    except Exception as exc:  # a broken install raises anything
        return CheckLine(module, False, f"cannot import {module} ({_short(exc)}): run `make setup`")
    return _version_line(module, dist, version, pins)


def _check_locust_import(pins: dict[str, str]) -> CheckLine:
    # Never import Locust here: its gevent monkey-patching hangs a Jupyter kernel (Locust #2770).
    code = "import locust, sys; sys.stdout.write(locust.__version__)"
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckLine("locust", False, f"could not start Python to import locust ({_short(exc)})")
    if r.returncode != 0:
        err = (r.stderr or "").strip().splitlines()
        return CheckLine("locust", False, f"cannot import locust ({err[-1] if err else 'exit ' + str(r.returncode)}): "
                                          "run `make setup`")
    return _version_line("locust", "locust", r.stdout.strip(), pins)


def _can_listen(port: int) -> int | None:
    """The port bound on 127.0.0.1 (0: any free one), or None when it is taken."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        s.listen(1)
        return s.getsockname()[1]


def _check_port() -> CheckLine:
    from botkit.core.config import settings

    try:
        port = _can_listen(0)
    except OSError as exc:
        port, reason = None, _short(exc)
    else:
        reason = "no free port"
    if port is None:
        return CheckLine("free port", False, f"cannot listen on 127.0.0.1 ({reason}): a firewall or sandbox "
                                             "blocks loopback servers; ask the room's IT contact")
    # Notebooks and `make run` pick a free port each time; only `botkit serve` defaults to settings.port.
    default = settings.port
    note = (f"{default} (`botkit serve`'s default) is free" if _can_listen(default) is not None else
            f"{default} (`botkit serve`'s default) is taken: use `botkit serve --port N` or stop what holds it")
    return CheckLine("free port", True, f"127.0.0.1:{port} can listen; {note}")


def _check_store() -> CheckLine:
    from botkit.core.config import settings

    home = settings.bentoml_home
    made = [p for p in (home, *home.parents) if not p.exists()]  # folders this check creates, and removes
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".botkit-write-check-", dir=home)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return CheckLine("model store", False, f"cannot write to BENTOML_HOME={home} ({_short(exc)}): "
                                               "point BENTOML_HOME at a folder you own, or unset it")
    finally:
        for p in made:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
    note = " (created on first use)" if made else ""
    return CheckLine("model store", True, f"BENTOML_HOME={home} is writable{note}")


def _check_notebooks(timeout_s: float) -> CheckLine:
    import nbformat

    with tempfile.TemporaryDirectory(prefix="botkit-nbcheck-") as tmp:
        src, out = Path(tmp) / "check.ipynb", Path(tmp) / "check.out.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("answer = 0", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell("print('notebook says', answer + 1)")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src)
        exe = Path(sys.executable).with_name("papermill")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "papermill"]
        cmd += [str(src), str(out), "-p", "answer", "41", "-k", "python3", "--no-progress-bar", "--cwd", tmp]
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return CheckLine("notebooks", False, f"papermill did not finish ({_short(exc)})")
        took = time.monotonic() - t0
        text = out.read_text(encoding="utf-8") if out.exists() else ""
        if r.returncode != 0 or "notebook says 42" not in text:
            err = [ln for ln in (r.stderr or "").splitlines() if ln.strip() and "Location 'file:" not in ln]
            reason = err[-1] if err else f"exit code {r.returncode}"
            if "kernel" in reason.lower():
                reason += " (install the kernel: python -m ipykernel install --sys-prefix)"
            return CheckLine("notebooks", False, f"papermill could not run a test notebook: {reason}")
    return CheckLine("notebooks", True, f"papermill ran a test notebook with the python3 kernel in {took:.1f} s")


def _check_locust_cli() -> CheckLine:
    exe = Path(sys.executable).with_name("locust")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "locust"]
    try:
        r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckLine("locust command", False, f"cannot run locust ({_short(exc)}): run `make setup`")
    out = (r.stdout + r.stderr).strip().splitlines()
    if r.returncode != 0:
        return CheckLine("locust command", False, f"`locust --version` failed: {out[-1] if out else r.returncode}")
    return CheckLine("locust command", True, f"`locust --version` runs ({out[0].split(' from ')[0] if out else 'ok'})")


def machine_check(*, timeout_s: float = 180.0) -> list[CheckLine]:
    """Is this machine ready for the workshop? One line per item; nothing needs a trained model.

    Checks run in parallel threads (the slow ones are child processes) and never raise: a
    failing item is a red line with the reason and the fix.
    """
    from concurrent.futures import ThreadPoolExecutor

    pins = _lock_pins()
    jobs: list[Callable[[], CheckLine]] = [
        _check_python,
        *(functools.partial(_check_package, m, d, pins) for m, d in _PACKAGES),
        functools.partial(_check_locust_import, pins),
        _check_port,
        _check_store,
        functools.partial(_check_notebooks, timeout_s),
        _check_locust_cli,
    ]
    names = ["python", *(m for m, _ in _PACKAGES), "locust", "free port", "model store", "notebooks",
             "locust command"]

    def safe(i: int) -> CheckLine:
        try:
            return jobs[i]()
        except Exception as exc:
            return CheckLine(names[i], False, f"the check itself failed: {_short(exc)}")

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="machine-check") as pool:
        return list(pool.map(safe, range(len(jobs))))


def format_lines(lines: Sequence[CheckLine], color: bool = False) -> str:
    """``✔``/``✘`` lines (green/red when ``color``) and a one-line verdict at the end."""
    green, red, reset = ("\033[32m", "\033[31m", "\033[0m") if color else ("", "", "")
    width = max((len(ln.name) for ln in lines), default=0)
    out = [f"{green}✔{reset} {ln.name:<{width}}  {ln.detail}" if ln.ok else
           f"{red}✘{reset} {ln.name:<{width}}  {ln.detail}" for ln in lines]
    bad = sum(not ln.ok for ln in lines)
    out.append(f"{green}all {len(lines)} checks passed: ready for the workshop{reset}" if not bad else
               f"{red}{bad} of {len(lines)} checks failed: fix the ✘ lines (workshops/README.md, "
               f"'Common mistakes') before the workshop{reset}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------- feedback

FEEDBACK_QUESTIONS = ("pace", "clarity", "usefulness")
FEEDBACK_TEXT = ("what_worked", "what_to_change")
FEEDBACK_COLUMNS = ("timestamp", "block", "role", *FEEDBACK_QUESTIONS, *FEEDBACK_TEXT)
_REQUIRED = ("block", *FEEDBACK_QUESTIONS, *FEEDBACK_TEXT)


class FeedbackError(ValueError):
    """A feedback file that cannot be summarised; the message is one line naming the file and the problem."""


@dataclass
class FeedbackSummary:
    """Averages per block and question, counts, grouped comments, and the files written."""

    n_responses: int
    blocks: list[str]
    counts: dict[str, int]
    means: dict[str, dict[str, float | None]]
    sds: dict[str, dict[str, float | None]]
    overall: dict[str, float | None]
    roles: dict[str, int]
    comments: dict[str, dict[str, list[str]]]
    watch: list[str] = field(default_factory=list)
    markdown_path: Path | None = None
    png_path: Path | None = None


def _score(raw: str | None, path: Path, row: int, question: str) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None  # a skipped question is not an error
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise FeedbackError(f"{path}: row {row}: {question} must be a whole number from 1 to 5, got {text!r}") from None
    if not value.is_integer() or not 1 <= value <= 5:
        raise FeedbackError(f"{path}: row {row}: {question} must be a whole number from 1 to 5, got {text!r}")
    return value


def _read_feedback(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FeedbackError(f"{path}: no such file (export the form answers as CSV, with the header of "
                            "workshops/feedback_form_template.csv)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets add a BOM
            reader = csv.DictReader(fh)
            header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
            missing = [c for c in _REQUIRED if c not in header]
            if not header:
                raise FeedbackError(f"{path}: the file is empty (expected a header line: {','.join(FEEDBACK_COLUMNS)})")
            if missing:
                raise FeedbackError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)}); "
                                    "use the header of workshops/feedback_form_template.csv")
            rows = [{(k or "").strip().lower(): (v if isinstance(v, str) else "") for k, v in r.items()}
                    for r in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FeedbackError(f"{path}: not a readable UTF-8 CSV file ({_short(exc)})") from None
    rows = [r for r in rows if any((v or "").strip() for v in r.values())]
    if not rows:
        raise FeedbackError(f"{path}: the header is there but no answers")
    return rows


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return round(statistics.fmean(values), 2), round(statistics.stdev(values), 2) if len(values) > 1 else 0.0


def summarize_feedback(csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> FeedbackSummary:
    """Read the feedback answers, write ``feedback_summary.md`` and ``feedback_scores.png`` into ``out_dir``.

    Scores are 1-5 (pace: 3 = just right; clarity and usefulness: 5 = best); a blank score is
    a skipped question, not a zero. Blocks keep the order they first appear in (the agenda's).
    Raises :class:`FeedbackError` with one line for a missing file, missing columns or a bad score.
    """
    path = Path(csv_path)
    rows = _read_feedback(path)
    blocks: list[str] = []
    scores: dict[str, dict[str, list[float]]] = {}
    comments: dict[str, dict[str, list[str]]] = {}
    roles: Counter[str] = Counter()
    for i, r in enumerate(rows, start=2):  # row 1 is the header
        block = (r.get("block") or "").strip()
        if not block:
            raise FeedbackError(f"{path}: row {i}: the block is empty (which part of the workshop is this about?)")
        if block not in scores:
            blocks.append(block)
            scores[block] = {q: [] for q in FEEDBACK_QUESTIONS}
            comments[block] = {t: [] for t in FEEDBACK_TEXT}
        for q in FEEDBACK_QUESTIONS:
            value = _score(r.get(q), path, i, q)
            if value is not None:
                scores[block][q].append(value)
        for t in FEEDBACK_TEXT:
            text = " ".join((r.get(t) or "").split())
            if text:
                comments[block][t].append(text)
        roles[(r.get("role") or "").strip() or "not given"] += 1
    means = {b: {q: _mean_sd(scores[b][q])[0] for q in FEEDBACK_QUESTIONS} for b in blocks}
    sds = {b: {q: _mean_sd(scores[b][q])[1] for q in FEEDBACK_QUESTIONS} for b in blocks}
    overall = {q: _mean_sd([v for b in blocks for v in scores[b][q]])[0] for q in FEEDBACK_QUESTIONS}
    counts = {b: sum(1 for r in rows if (r.get("block") or "").strip() == b) for b in blocks}
    watch = []
    for b in blocks:
        pace, clarity, useful = (means[b][q] for q in FEEDBACK_QUESTIONS)
        if pace is not None and not 2.5 <= pace <= 3.5:
            watch.append(f"{b}: pace {pace:.1f} ({'too fast' if pace > 3.5 else 'too slow'})")
        for q, v in (("clarity", clarity), ("usefulness", useful)):
            if v is not None and v < 3.5:
                watch.append(f"{b}: {q} {v:.1f}")
    summary = FeedbackSummary(len(rows), blocks, counts, means, sds, overall, dict(roles.most_common()),
                              comments, watch)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary.png_path = _feedback_png(summary, out / "feedback_scores.png")
    summary.markdown_path = out / "feedback_summary.md"
    summary.markdown_path.write_text(_feedback_markdown(summary, path), encoding="utf-8")
    return summary


def _cell(mean: float | None, sd: float | None) -> str:
    return "–" if mean is None else f"{mean:.2f} ± {sd:.2f}"


def _feedback_markdown(s: FeedbackSummary, source: Path) -> str:
    lines = ["# Workshop feedback", "",
             f"{s.n_responses} answers from `{source.name}`, {len(s.blocks)} blocks. "
             "Roles: " + ", ".join(f"{k} {v}" for k, v in s.roles.items()) + ".", "",
             "Scores 1-5, mean ± standard deviation. **pace**: 1 = far too slow, 3 = just right, 5 = far too fast; "
             "**clarity** and **usefulness**: 5 = best. A blank score is a skipped question.", "",
             "| block | answers | pace | clarity | usefulness |", "|---|---:|---:|---:|---:|"]
    for b in s.blocks:
        lines.append(f"| {b} | {s.counts[b]} | " + " | ".join(_cell(s.means[b][q], s.sds[b][q])
                                                                  for q in FEEDBACK_QUESTIONS) + " |")
    lines.append(f"| **all blocks** | {s.n_responses} | " + " | ".join(
        "–" if s.overall[q] is None else f"{s.overall[q]:.2f}" for q in FEEDBACK_QUESTIONS) + " |")
    lines += ["", "## To look at before the next run", ""]
    lines += [f"- {w}" for w in s.watch] or ["- nothing: every block's pace is within 2.5-3.5 and clarity and "
                                             "usefulness are at least 3.5"]
    lines += ["", f"![mean scores per block]({s.png_path.name if s.png_path else 'feedback_scores.png'})", "",
              "## What people said, by block", ""]
    for b in s.blocks:
        lines += [f"### {b}", ""]
        for t, title in (("what_worked", "What worked"), ("what_to_change", "What to change")):
            said = s.comments[b][t]
            lines.append(f"**{title}** ({len(said)})")
            lines.append("")
            lines += [f"- {c}" for c in said] or ["- (nothing written)"]
            lines.append("")
    return "\n".join(lines)


def _feedback_png(s: FeedbackSummary, path: Path) -> Path:
    # The object API, not pyplot: no GUI backend is needed or changed (safe in a notebook and a CLI).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 1.4 * len(s.blocks) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(FEEDBACK_QUESTIONS)
    colors = ("#4f81bd", "#9bbb59", "#f79646")
    for k, (q, color) in enumerate(zip(FEEDBACK_QUESTIONS, colors, strict=True)):
        xs = [i + (k - 1) * width for i in range(len(s.blocks))]
        means = [s.means[b][q] if s.means[b][q] is not None else math.nan for b in s.blocks]
        errs = [s.sds[b][q] or 0.0 for b in s.blocks]
        ax.bar(xs, means, width, yerr=errs, capsize=3, color=color, label=q, error_kw={"elinewidth": 1})
    ax.axhline(3, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(s.blocks)), [b if len(b) <= 18 else b[:17] + "…" for b in s.blocks],
                  rotation=20, ha="right")
    ax.set_ylim(0, 5.6)
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.set_ylabel("mean score (1-5), bars ± 1 sd")
    ax.set_title(f"Workshop feedback: {s.n_responses} answers (pace: 3 = just right)")
    ax.legend(loc="upper right", ncols=3, fontsize="small")
    fig.savefig(path, dpi=100)
    return path
