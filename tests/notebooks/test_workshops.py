"""The workshop material keeps working: solved notebooks pass every check, unsolved ones say "not yet".

Three groups:

* the notebooks: every solution, run by papermill through ``botkit.teaching.notebooks.run`` with
  ``smoke=True``, shows ``✅ done`` in every check cell and no ``⏳ not yet``; every exercise, run
  unsolved, reaches its last cell and every check says ``⏳ not yet`` with a hint. Solutions run
  in this process and exercises in a child process at the same time (both mostly wait on
  kernels, servers and Locust), which keeps the file within about three minutes;
* the checks of ``botkit.teaching.workshop``: right, wrong, missing (``None`` / ``...``) and an exception
  inside each give the right verdict, and no input makes one raise;
* ``machine_check`` (all green here, without a trained model) and ``summarize_feedback``.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from botkit.core.drift import Check
from botkit.core.model import Prediction
from botkit.ops.governance import RuleResult
from botkit.teaching import workshop

ROOT = Path(__file__).resolve().parents[2]
WORKSHOPS = ROOT / "workshops"
EXERCISES = sorted((WORKSHOPS / "exercises").glob("*.ipynb"))
SOLUTIONS = sorted((WORKSHOPS / "solutions").glob("*.ipynb"))
NAMES = [p.name for p in SOLUTIONS]

_CHILD = """
import json, sys
from botkit.teaching.notebooks import run
results = run(sys.argv[2:], smoke=True, out_dir=sys.argv[1], progress=False)
print(json.dumps([{"name": r.path.name, "ok": r.ok, "error": r.error, "output": str(r.output),
                   "seconds": round(r.seconds, 1)} for r in results]))
"""


# ------------------------------------------------------------------------------------ notebooks


def _text(cell) -> str:
    """Everything a code cell showed: streams, results, errors."""
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") in ("execute_result", "display_data"):
            parts.append(o.get("data", {}).get("text/plain", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return "".join(parts)


def _check_cells(path: Path) -> list[tuple[int, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, _text(c)) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and "check" in c.metadata.get("tags", [])]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict]]:
    """Run solutions (here) and exercises (a child process, reversed order) at the same time."""
    from botkit.teaching.notebooks import run

    root = tmp_path_factory.mktemp("workshops")
    before = os.environ.get("BOTKIT_NB_HOME")
    os.environ["BOTKIT_NB_HOME"] = str(root / "homes")  # notebook homes land in the test's temp folder
    t0 = time.monotonic()
    try:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root / "exercises"),
                                  *map(str, reversed(EXERCISES))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            solved = run(SOLUTIONS, smoke=True, out_dir=root / "solutions", progress=False)
            out, err = child.communicate(timeout=900)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    finally:
        if before is None:
            os.environ.pop("BOTKIT_NB_HOME", None)
        else:
            os.environ["BOTKIT_NB_HOME"] = before
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert child.returncode == 0 and lines, f"the exercise run failed: {err[-2000:]}"
    results = {
        "solutions": {r.path.name: {"ok": r.ok, "error": r.error, "output": str(r.output),
                                    "seconds": round(r.seconds, 1)} for r in solved},
        "exercises": {r["name"]: r for r in json.loads(lines[-1])},
    }
    print(f"\nworkshop notebooks: {time.monotonic() - t0:.0f} s wall; " + ", ".join(
        f"{kind[0]}:{name[:2]} {r['seconds']}s" for kind, rs in results.items() for name, r in rs.items()))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_solution_passes_all_its_checks(executed: dict, name: str) -> None:
    r = executed["solutions"][name]
    assert r["ok"], f"solutions/{name} failed at {r['error']}"
    checks = _check_cells(Path(r["output"]))
    assert checks, f"solutions/{name} has no check cells"
    for i, text in checks:
        assert "✅ done" in text and "⏳ not yet" not in text, f"solutions/{name}, cell {i}: {text!r}"
    whole = "".join(_text(c) for c in nbformat.read(r["output"], as_version=4).cells if c.cell_type == "code")
    assert "⏳ not yet" not in whole


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_runs_unsolved_and_each_check_says_not_yet_with_a_hint(executed: dict, name: str) -> None:
    r = executed["exercises"][name]
    assert r["ok"], f"exercises/{name} did not run to the end: {r['error']}"
    checks = _check_cells(Path(r["output"]))
    assert checks, f"exercises/{name} has no check cells"
    for i, text in checks:
        assert "✅" not in text, f"exercises/{name}, cell {i} passes unsolved: {text!r}"
        assert re.search(r"⏳ not yet: .{20,}", text), f"exercises/{name}, cell {i} gives no hint: {text!r}"


def test_exercises_and_solutions_pair_up_and_are_shaped_for_papermill() -> None:
    assert len(EXERCISES) >= 5
    assert [p.name for p in EXERCISES] == NAMES
    for ex, sol in zip(EXERCISES, SOLUTIONS, strict=True):
        nb_ex, nb_sol = nbformat.read(ex, as_version=4), nbformat.read(sol, as_version=4)
        assert len(nb_ex.cells) == len(nb_sol.cells), ex.name
        code = [c for c in nb_ex.cells if c.cell_type == "code"]
        assert not any(c.get("outputs") for c in code), f"{ex.name} is committed with outputs"
        assert "private_home(" in code[0].source, f"{ex.name}: the first code cell must isolate BOTKIT_HOME"
        params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and re.search(r"^smoke = False\b", params[0].source, re.M), ex.name
        todos = [c for c in code if "todo" in c.metadata.get("tags", [])]
        assert todos and all("..." in c.source or "None" in c.source for c in todos), ex.name
        homes = {re.search(r'private_home\("([\w.-]+)"\)', "".join(c.source for c in n.cells)).group(1)
                 for n in (nb_ex, nb_sol)}
        assert len(homes) == 2, f"{ex.name}: exercise and solution must use different homes (they run in parallel)"


def _code_lines(source: str) -> list[str]:
    return [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]


@pytest.mark.parametrize("name", NAMES)
def test_no_hint_in_an_exercise_gives_the_solution_away(name: str) -> None:
    """A TODO cell's hints guide; they never contain a line of the solution's code for that cell."""
    nb_ex = nbformat.read(WORKSHOPS / "exercises" / name, as_version=4)
    nb_sol = nbformat.read(WORKSHOPS / "solutions" / name, as_version=4)
    for i, (ex, sol) in enumerate(zip(nb_ex.cells, nb_sol.cells, strict=True)):
        if "todo" not in ex.metadata.get("tags", []):
            continue
        comments = re.sub(r"\s+", "", "".join(ln.split("#", 1)[1] for ln in ex.source.splitlines() if "#" in ln))
        for line in _code_lines(sol.source):
            code = line.split("#", 1)[0]
            rhs = code.split("=", 1)[1] if re.match(r"^\w+\s*=[^=]", code) else code  # x = <the answer>
            for piece in {re.sub(r"\s+", "", code), re.sub(r"\s+", "", rhs)}:
                assert len(piece) <= 12 or piece not in comments, \
                    f"exercises/{name}, cell {i}: a hint holds the solution's {line!r}"


# ------------------------------------------------------------------------------------- checks


class FakeModel:
    """Answers by keywords, ignoring case and punctuation: a model with the behaviour tests expect."""

    intents = ("greeting", "order_status", "refund")
    threshold = 0.3

    def predict(self, texts):
        out = []
        for t in texts:
            low = t.lower()
            intent = ("refund" if "refund" in low else "order_status" if "ord" in low
                      else "greeting" if "hel" in low else "oos")
            out.append(Prediction(intent, 0.9, intent == "oos", intent))
        return out


PAIRS = [("where is my order", "WHERE IS MY ORDER?"), ("i want a refund", "I want a refund!"), ("hello", "Hello")]


def good_test(model):
    for a, b in PAIRS:
        pa, pb = model.predict([a, b])
        assert pa.intent == pb.intent, f"{a!r} -> {pa.intent} but {b!r} -> {pb.intent}"


def empty_test(model):
    ...


def test_is_todo_knows_the_unsolved_values() -> None:
    for value in (None, ..., "...", " TODO ", "", [1, ...], {"a": ...}):
        assert workshop.is_todo(value), value
    for value in (0, 0.8, "workers", [1, 2], {"a": None}, False):
        assert not workshop.is_todo(value), value


def test_check_generic_turns_asserts_and_exceptions_into_hints() -> None:
    assert workshop.check("easy", lambda: True).passed
    assert workshop.check("none is fine", lambda: None).passed

    def failing():
        raise AssertionError("the audit log is empty")

    r = workshop.check("audit", failing)
    assert not r.passed and r.message == "⏳ not yet: audit: the audit log is empty"
    r = workshop.check("index", lambda: [][0])
    assert not r.passed and "IndexError" in r.message
    assert workshop.check("false", lambda: False, hint="make it true").message.endswith("make it true")
    assert "TODO" in workshop.check("todo", None).message
    assert not workshop.check("not callable", 42).passed
    assert str(workshop.check("easy", lambda: 1)) == "✅ done: easy" == repr(workshop.check("easy", lambda: 1))


def test_check_dataset_right_wrong_missing_and_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    from botkit.core import data

    ds = data.load()
    ten = [f"loyalty question number {w}" for w in "abcdefghij"]
    wraps = [f"please gift wrap item {w}" for w in "abcdefghij"]
    new = workshop.with_new_intents(ds, {"loyalty_points": ten, "gift_wrapping": wraps})
    assert len(ds.intents) == 30 and len(new.intents) == 32  # a copy: the original is untouched
    r = workshop.check_dataset(new, base=ds)
    assert r.passed and "loyalty_points 6/2/2" in r.message, r.message

    assert "still empty" in workshop.check_dataset(None).message
    assert "still empty" in workshop.check_dataset(...).message
    assert workshop.with_new_intents(ds, {"loyalty_points": ..., "gift_wrapping": wraps}) is None
    assert "expected a botkit Dataset" in workshop.check_dataset([("hi", "greeting")]).message
    few = workshop.with_new_intents(ds, {"loyalty_points": ten[:7], "gift_wrapping": wraps})
    msg = workshop.check_dataset(few).message
    assert msg.startswith("⏳ not yet: the data set does not validate") and "at least 9 sentences" in msg
    leak = workshop.with_new_intents(ds, {"loyalty_points": ten, "gift_wrapping": [*wraps[:9], ten[0].upper()]})
    assert "once only" in workshop.check_dataset(leak).message
    typo = workshop.with_new_intents(ds, {"loyalty_point": ten, "gift_wrapping": wraps})
    assert "'loyalty_points' has no training sentences" in workshop.check_dataset(typo).message
    replaced = workshop.with_new_intents(data.Dataset("x", {"train": [], "val": [], "test": []}),
                                         {"loyalty_points": ten, "gift_wrapping": wraps})
    assert "original intents are gone" in workshop.check_dataset(replaced, base=ds).message

    monkeypatch.setattr(data.Dataset, "validate", lambda self, **kw: 1 / 0)
    r = workshop.check_dataset(new)
    assert not r.passed and "ZeroDivisionError" in r.message and "Run All" in r.message


def _metrics(acc=0.87, recall=1.0, support=2):
    per = {"greeting": {"precision": 1, "recall": 1, "f1": 0.9, "support": 5}}
    for i in workshop.NEW_INTENTS:
        per[i] = {"precision": 1.0, "recall": recall, "f1": recall, "support": support}
    return {"in_scope_accuracy": acc, "oos_recall": 0.9, "per_intent": per,
            "confused_pairs": [{"true": "loyalty_points", "predicted": "oos", "count": 2}]}


def test_check_model_quality_right_wrong_missing_and_broken() -> None:
    r = workshop.check_model_quality(_metrics(), min_acc=0.8)
    assert r.passed and "0.870" in r.message and "gift_wrapping F1 1.00" in r.message
    assert workshop.check_model_quality(SimpleNamespace(metrics=_metrics()), 0.8).passed  # an Evaluation
    assert "below your floor 0.8" in workshop.check_model_quality(_metrics(acc=0.7), 0.8).message
    msg = workshop.check_model_quality(_metrics(recall=0.0), 0.8).message
    assert "recognises only 0%" in msg and "went to oos" in msg
    assert "not in the evaluation" in workshop.check_model_quality(_metrics(support=0), 0.8).message
    assert "no metrics yet" in workshop.check_model_quality(..., 0.8).message
    assert "choose the floor" in workshop.check_model_quality(_metrics(), ...).message
    assert "between 0 and 1" in workshop.check_model_quality(_metrics(), 80).message
    assert "expected the metrics dict" in workshop.check_model_quality("0.9", 0.8).message
    broken = _metrics()
    broken["per_intent"]["loyalty_points"] = "oops"
    assert "could not read your answer" in workshop.check_model_quality(broken, 0.8).message


def test_check_behaviour_test_needs_a_test_that_passes_and_catches_a_broken_model() -> None:
    model = FakeModel()
    r = workshop.check_behaviour_test(good_test, model)
    assert r.passed and "catches a model that ignores meaning" in r.message
    assert "checks nothing yet" in workshop.check_behaviour_test(empty_test, model).message
    assert "write the test function" in workshop.check_behaviour_test(..., model).message
    assert "train the model" in workshop.check_behaviour_test(good_test, None).message
    assert "expected a test function" in workshop.check_behaviour_test("test", model).message

    def too_strict(m):
        assert m.predict(["hello"])[0].intent == "refund", "hello should be a refund"

    assert "fails on the trained model: hello should be a refund" in \
        workshop.check_behaviour_test(too_strict, model).message

    def crashes(m):
        m.predict("hello").intent  # noqa: B018 - a typical mistake: a string, not a list

    assert "crashed on the trained model with AttributeError" in workshop.check_behaviour_test(crashes, model).message

    def returns(m):
        return m.predict(["hello"])[0].intent == "oos"

    assert "returned False" in workshop.check_behaviour_test(returns, model).message
    scrambled = workshop.scrambled(model)
    assert scrambled.predict(["hello"])[0].intent != scrambled.predict(["Hello"])[0].intent or \
        scrambled.predict(["order"])[0].intent != scrambled.predict(["ORDER"])[0].intent


def _run(code: int, stdout: str = "", stderr: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["botkit", "eval"], code, stdout, stderr)


def test_check_gate_passes_the_good_model_and_stops_the_weak_one() -> None:
    good = _run(0, "in_scope_accuracy   0.8667\noos_recall          0.8750\n")
    weak = _run(1, "in_scope_accuracy   0.5944\n", "GATE FAILED: in_scope_accuracy 0.5944 is below the gate 0.84\n")
    r = workshop.check_gate(good, weak)
    assert r.passed and "stops the weak one (exit 1: in_scope_accuracy 0.5944 is below the gate 0.84)" in r.message
    assert workshop.check_gate(good).passed
    msg = workshop.check_gate(_run(1, "in_scope_accuracy   0.8667\n", "GATE FAILED: x\n"), weak).message
    assert "stops the good model too" in msg and "in_scope_accuracy 0.8667" in msg
    assert "lets the weak model through" in workshop.check_gate(good, _run(0, "in_scope_accuracy   0.59\n")).message
    assert "could not run: botkit: error: unknown model" in \
        workshop.check_gate(_run(2, "", "botkit: error: unknown model\n")).message
    assert "set the floors" in workshop.check_gate(None).message
    assert "expected the result" in workshop.check_gate({"returncode": 0}).message
    assert workshop.run_gate("shopbot:x", {"min_in_scope_accuracy": ..., "min_oos_recall": 0.8}) is None


def test_check_bottleneck_accepts_a_justified_answer_that_fits_the_measurements() -> None:
    obs = {"cores": 2, "workers": 1, "batching": False, "server_cores_used": 0.98, "requests_per_s": 240}
    why = "one worker kept about 0.98 of 2 cores busy, the other core sat idle"
    r = workshop.check_bottleneck("workers", why, obs)
    assert r.passed and "workers=2" in r.message
    assert workshop.check_bottleneck({"bottleneck": "Batch", "because": "batching is off, so each request "
                                      "pays the model call alone"}, observations=obs).passed
    assert "choose the bottleneck" in workshop.check_bottleneck(..., why, obs).message
    assert "now say why" in workshop.check_bottleneck("workers", None, obs).message
    assert "at least 6 words" in workshop.check_bottleneck("workers", "the GIL", obs).message
    assert "does not point at a measurement" in \
        workshop.check_bottleneck("batching", "I just feel that this is the right answer", obs).message
    assert "only 1.0 of 2 cores" in workshop.check_bottleneck("cpu", "the cpu was the limit, clearly busy", obs).message
    assert workshop.check_bottleneck("cpu", "the server used 1.9 of 2 cores, CPU is saturated",
                                     {**obs, "server_cores_used": 1.9}).passed
    crowded = {**obs, "machine_cores_busy": 1.95}  # Locust and the server share the laptop's two cores
    assert workshop.check_bottleneck("cpu", "the whole machine had 1.95 of 2 cores busy", crowded).passed
    assert "(the whole machine 1.0)" in workshop.check_bottleneck(
        "cpu", "the cpu was the limit, clearly busy", {**obs, "machine_cores_busy": 1.0}).message
    assert "already ran 2 workers" in workshop.check_bottleneck("workers", why, {**obs, "workers": 2}).message
    assert "already on" in workshop.check_bottleneck("batching", "batching would group requests per call",
                                                     {**obs, "batching": True}).message
    assert "is not one of" in workshop.check_bottleneck("network", why, obs).message


def _report(*checks: Check, chats: int = 200):
    return SimpleNamespace(checks=list(checks), alerts=[c for c in checks if c.flagged], counts={"chats": chats})


def test_check_drift_caught_wants_a_flagged_check_named() -> None:
    fb = Check("fallback_rate", 0.26, 0.1, True, "The fallback rate rose by more than 10 points.")
    ks = Check("confidence_ks", 0.05, 0.14, False, "Confidence looks as usual.")
    report = _report(fb, ks)
    r = workshop.check_drift_caught(report, "fallback_rate")
    assert r.passed and "fallback_rate 0.26 vs threshold 0.1" in r.message
    assert workshop.check_drift_caught(report, ["fallback_rate"]).passed
    assert "confidence_ks did not flag" in workshop.check_drift_caught(report, "confidence_ks").message
    assert "no check called 'drift'" in workshop.check_drift_caught(report, "drift").message
    assert "now name one check" in workshop.check_drift_caught(report, ...).message
    quiet = workshop.check_drift_caught(_report(ks, chats=30), "confidence_ks").message
    assert "no check flagged" in quiet and "only 30 chats" in quiet
    assert "run the monitor" in workshop.check_drift_caught(None, "x").message
    assert "expected the MonitorReport" in workshop.check_drift_caught({"alerts": []}, "x").message

    class Exploding:
        alerts = (fb,)

        @property
        def checks(self):
            raise RuntimeError("store closed")

    assert "RuntimeError: store closed" in workshop.check_drift_caught(Exploding(), "fallback_rate").message


def _decision(approved: bool, *rules: RuleResult):
    return SimpleNamespace(approved=approved, rules=list(rules))


def test_check_promotion_decision_compares_the_call_with_the_policy() -> None:
    acc = RuleResult("min_in_scope_accuracy", False, "in_scope_accuracy 0.59 is below the minimum 0.84")
    rev_ok, rev_missing = RuleResult("reviewer", True, "reviewed by Dana"), RuleResult("reviewer", False, "none")
    rejected = _decision(False, rev_ok, acc)
    r = workshop.check_promotion_decision(rejected, "reject")
    assert r.passed and "REJECTED because min_in_scope_accuracy" in r.message
    assert workshop.check_promotion_decision(_decision(True, rev_ok), "Promote").passed
    assert workshop.check_promotion_decision(rejected, False).passed
    check = workshop.check_promotion_decision
    assert "you called promote, the policy says REJECTED" in check(rejected, "promote").message
    assert "every rule passed" in check(_decision(True, rev_ok), "reject").message
    assert "needs a named reviewer" in check(_decision(False, rev_missing), "promote").message
    assert "write down your call" in workshop.check_promotion_decision(rejected, ...).message
    assert "must be \"promote\" or \"reject\"" in workshop.check_promotion_decision(rejected, "maybe").message
    assert "apply the policy" in workshop.check_promotion_decision(None, "reject").message
    assert "expected the Decision" in workshop.check_promotion_decision("rejected", "reject").message


ODD_VALUES = (None, ..., 0, -1, math.nan, "", "x", [], {}, (), object(), b"\xff", [None, ...], {"bottleneck": 3})


@pytest.mark.parametrize("fn", [
    workshop.check_dataset, workshop.check_model_quality, workshop.check_behaviour_test, workshop.check_gate,
    workshop.check_bottleneck, workshop.check_drift_caught, workshop.check_promotion_decision,
])
def test_no_check_ever_raises(fn) -> None:
    for a in ODD_VALUES:
        for args in ((a,), *((a, b) for b in (None, ..., "x", 0.5, object()))):
            r = fn(*args)
            assert isinstance(r, workshop.CheckResult)
            assert r.message.startswith(("✅ done: ", "⏳ not yet: "))


# ---------------------------------------------------------------------------- helpers


def test_replay_traffic_writes_one_chat_event_per_message(tmp_path: Path) -> None:
    from botkit.serving.events import SQLiteStore

    with SQLiteStore(tmp_path / "events.sqlite3") as store:
        since, until = workshop.replay_traffic(store, FakeModel(), ["hello", "my order", "weather"], start=1000.0)
        events = store.read()
    assert (since, until) == (1000.0, pytest.approx(1000.15))
    assert [e.payload.intent for e in events] == ["greeting", "order_status", "oos"]
    assert all(since <= e.payload.ts < until for e in events)


def test_cpu_meter_counts_the_cpu_of_a_process_tree() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.2: pass"])
    try:
        with workshop.cpu_meter(proc) as cpu:
            proc.wait(30)
    finally:
        proc.kill()
    assert cpu.wall_s > 0.5 and 0.1 < cpu.cpu_s < 5 and cpu.cores > 0
    assert cpu.machine_cores >= cpu.cores * 0.5  # the whole machine includes the busy child


# ------------------------------------------------------------------------ machine check


@pytest.mark.slow
def test_machine_check_is_all_green_here_without_a_trained_model() -> None:
    had_locust = "locust" in sys.modules
    lines = [ln for ln in workshop.machine_check(bot=False) if not ln.optional]  # the bot: test_workshop_check.py
    names = [ln.name for ln in lines]
    for expected in ("python", "environment", "bentoml", "sklearn", "papermill", "locust", "matplotlib",
                     "jupyterlab", "kernel", "free port", "model store", "notebooks", "locust command"):
        assert expected in names
    bad = [ln for ln in lines if not ln.ok]
    assert not bad, workshop.format_lines(bad)
    assert ("locust" in sys.modules) == had_locust  # imported in a child process only
    assert "locust 2." in next(ln.detail for ln in lines if ln.name == "locust")


def test_format_lines_marks_each_line_and_ends_with_a_verdict() -> None:
    lines = [workshop.CheckLine("python", True, "Python 3.11.7"),
             workshop.CheckLine("free port", False, "cannot listen on 127.0.0.1")]
    plain = workshop.format_lines(lines, color=False)
    assert plain.splitlines() == ["✔ python     Python 3.11.7", "✘ free port  cannot listen on 127.0.0.1",
                                  plain.splitlines()[-1]]
    assert "1 of 2 required checks failed" in plain and "\033[" not in plain
    colored = workshop.format_lines(lines, color=True)
    assert "\033[32m✔\033[0m" in colored and "\033[31m✘\033[0m" in colored
    assert "all 1 required checks passed" in workshop.format_lines(lines[:1])


# ---------------------------------------------------------------------------------- feedback


def test_summarize_feedback_on_the_sample_writes_markdown_and_png(tmp_path: Path) -> None:
    s = workshop.summarize_feedback(WORKSHOPS / "feedback_sample.csv", tmp_path)
    assert s.n_responses == 12
    assert s.blocks == ["build a bot", "ci/cd", "serve and scale", "overall"]
    assert s.counts == {"build a bot": 3, "ci/cd": 3, "serve and scale": 3, "overall": 3}
    # by hand: build a bot pace (2+3+3)/3, clarity (5+4+4)/3; serve and scale clarity (4+2+3)/3, sd 1
    assert s.means["build a bot"] == {"pace": 2.67, "clarity": 4.33, "usefulness": 4.33}
    assert s.means["serve and scale"]["clarity"] == 3.0 and s.sds["serve and scale"]["clarity"] == 1.0
    assert s.means["overall"]["pace"] == 3.0  # one blank pace: skipped, not a zero
    assert s.overall["pace"] == round((2 + 3 + 3 + 3 + 3 + 4 + 4 + 5 + 4 + 3 + 3) / 11, 2)
    assert s.roles == {"data science": 4, "business": 4, "IT": 4}
    assert "serve and scale: pace 4.3 (too fast)" in s.watch
    md = s.markdown_path.read_text(encoding="utf-8")
    assert "| build a bot | 3 | 2.67 ± 0.58 | 4.33 ± 0.58 | 4.33 ± 0.58 |" in md
    assert "- Too fast: what is p95?" in md and "![mean scores per block](feedback_scores.png)" in md
    assert s.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summarize_feedback_fails_with_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(workshop.FeedbackError, match=r"nope\.csv: no such file"):
        workshop.summarize_feedback(tmp_path / "nope.csv", tmp_path / "out")
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,block,pace,usefulness,what_worked\n1,x,3,4,ok\n")
    with pytest.raises(workshop.FeedbackError) as info:
        workshop.summarize_feedback(bad, tmp_path / "out")
    msg = str(info.value)
    assert "missing column(s) role" not in msg  # role is optional
    assert "missing column(s) clarity, what_to_change" in msg and "\n" not in msg
    bad.write_text("block,pace,clarity,usefulness,what_worked,what_to_change\nbuild,7,4,4,,\n")
    with pytest.raises(workshop.FeedbackError, match=r"row 2: pace must be a whole number from 1 to 5, got '7'"):
        workshop.summarize_feedback(bad, tmp_path / "out")
    bad.write_text("block,pace,clarity,usefulness,what_worked,what_to_change\n")
    with pytest.raises(workshop.FeedbackError, match="no answers"):
        workshop.summarize_feedback(bad, tmp_path / "out")


def test_the_template_is_what_the_summary_reads(tmp_path: Path) -> None:
    template = WORKSHOPS / "feedback_form_template.csv"
    header = template.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert tuple(header) == workshop.FEEDBACK_COLUMNS
    assert workshop.summarize_feedback(template, tmp_path).n_responses == 2
