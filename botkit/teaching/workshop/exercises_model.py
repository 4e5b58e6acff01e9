"""Checks and helpers of exercises 01 (data and quality) and 02 (behaviour test and gate)."""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from botkit.teaching.workshop.checks import CheckResult, _safe, _short, done, is_todo, not_yet

__all__ = [
    "NEW_INTENTS",
    "check_behaviour_test",
    "check_dataset",
    "check_floor_decision",
    "check_gate",
    "check_model_quality",
    "run_botkit",
    "run_gate",
    "scrambled",
    "show_predictions",
    "with_new_intents",
]

NEW_INTENTS = ("loyalty_points", "gift_wrapping")


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
        return not_yet(step, "no metrics yet: train a model on the data set that holds your new intents (the "
                             "model class imported at the top has a method for it), evaluate it on that data set's "
                             "test split, and keep the metrics of what evaluate returns")
    m = _metrics_of(metrics)
    if m is None or "in_scope_accuracy" not in m:
        return not_yet(step, f"expected the metrics dict from evaluate(...).metrics, got {type(metrics).__name__}")
    if is_todo(min_acc):
        return not_yet(step, "choose the floor min_acc: the in-scope accuracy your bot must reach, argued from "
                             "what a wrong answer costs")
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


_COST_WORDS = ("cost", "€", "$", "euro", "money", "ticket", "complain", "wrong", "fallback", "rephrase", "risk",
               "trust", "call", "refund", "kost", "falsch", "beschwer", "anruf", "risiko", "vertrauen", "rückfrage")
_OWNER_WORDS = ("business", "product", "owner", "customer service", "support", "lead", "manager", "sign", "decide",
                "accountable", "fachbereich", "produkt", "kundenservice", "verantwort", "unterschreib", "entscheid")


@_safe("floor decision")
def check_floor_decision(floor: Any, reason: Any, metrics: Any = None) -> CheckResult:
    """The quality floor as a business decision: a number, who signs it, and what an error costs."""
    step = "floor decision"
    if is_todo(floor):
        return not_yet(step, "choose the floor: the in-scope accuracy below which your team would rather not ship. "
                             "Start from the cost: what does one wrong answer cost the shop, and one fallback?")
    if not isinstance(floor, int | float) or isinstance(floor, bool) or not 0 < float(floor) <= 1:
        return not_yet(step, f"the floor is a share between 0 and 1 (0.85 means 85 %), got {floor!r}")
    if floor < 0.5:
        return not_yet(step, f"a floor of {floor:g} ships a bot that answers most in-scope questions wrongly: would "
                             "the person who handles the complaints sign that?")
    if floor >= 0.99:
        return not_yet(step, f"{floor:g} leaves no room for a single error on a few hundred test sentences; no model "
                             "here reaches it. What error rate would customers really accept?")
    words = str(reason or "").split()
    if is_todo(reason) or len(words) < 12:
        return not_yet(step, "write the reason in two or three sentences (12+ words): who signs this number, "
                             "and what a wrong answer costs compared with a polite fallback")
    text = str(reason).lower()
    if not any(w in text for w in _COST_WORDS):
        return not_yet(step, "your reason does not say what an error costs: compare a wrong answer (a misled "
                             "customer, a support ticket) with a fallback (the customer rephrases)")
    if not any(w in text for w in _OWNER_WORDS):
        return not_yet(step, "your reason does not say who decides: name the role that signs the floor "
                             "(workshops/culture.md: who is accountable for floors?)")
    m = _metrics_of(metrics) if metrics is not None and not is_todo(metrics) else None
    grain = ""
    if m and m.get("n_in_scope"):
        grain = (f" On this test split one wrong answer moves accuracy by {1 / m['n_in_scope']:.3f}: a floor "
                 "finer than that is noise.")
    excerpt = " ".join(words[:14]) + (" ..." if len(words) > 14 else "")
    return done(step, f"floor {floor:g}, argued: \"{excerpt}\"{grain}")


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

