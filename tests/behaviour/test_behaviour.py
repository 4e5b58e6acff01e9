"""Behaviour tests in the CheckList style (Ribeiro et al., 2020): what the bot must do, not how well it scores.

* Minimum functionality (MFT): for every intent, hand-written probes (``probes.yaml``, not in
  the training data) get the right intent; out-of-scope probes get the fallback.
* Invariance (INV): a typo, the casing, trailing punctuation or polite filler must not change
  the predicted intent.
* Directional (DIR): asking for a human must move a message to ``human_handoff``, or at least
  not make the bot more sure of its first answer.

Aggregate metrics can stay flat while one of these breaks (a new intent swallows "thanks", a
feature change makes the model case-sensitive), so these run in CI next to ``botkit eval``.
Thresholds are below, each measured on the default bot with the margin noted; a failure
lists every broken case (up to a limit) with its text, so the message says what to fix.
``conftest.py`` says which bot is tested (``BOTKIT_MODEL_TAG``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytest

from botkit.core.data import OOS, normalize

if TYPE_CHECKING:  # the fixtures' types; conftest modules are not imported by name
    from tests.behaviour.conftest import Bot, Probes

# ------------------------------------------------------------------------------- thresholds
# Measured on the default bot (bundled shopbot data, seed 42) when these tests were written;
# each threshold sits a safe margin below the measurement (see the comment on each line).

MIN_PROBES_PER_INTENT = 3           # the probe file must give every intent at least this many
MIN_CORRECT_PER_INTENT = 0.5        # MFT, per intent: at least 2 of its 4 probes right
                                    #   (measured: 30 intents 4/4; TF-IDF only: apply_coupon 2/4, ON the floor)
MIN_MFT_ACCURACY = 0.90             # MFT, all 120 in-scope probes together (measured 1.000; TF-IDF only 0.983)
MIN_OOS_PROBE_FALLBACK = 0.75       # out-of-scope probes that get the fallback (measured 0.95; TF-IDF only 0.85)
MIN_INV_TYPO = 0.80                 # one seeded typo, 2 variants per utterance (measured 0.843 of 1310 pairs;
                                    #   TF-IDF only 0.873: the embeddings lose a mistyped word's meaning)
MIN_INV_CASING = 0.99               # upper / lower / title case (measured 1.000: the features lowercase)
MIN_INV_PUNCTUATION = 0.95          # trailing punctuation replaced (measured 0.975 of 3960; TF-IDF only 0.990)
MIN_INV_PLEASE = 0.90               # "please ..." / "... please" (measured 0.965 of 1144; TF-IDF only 0.983)
# "..., thanks" once turned 42 % of requests into the `thanks` intent (measured 0.576); the model
# now also learns a share of requests with a polite suffix (TrainParams.polite_augment).
MIN_INV_THANKS = 0.90               # (measured 0.970 of 1144 pairs)
MIN_DIR_HANDOFF = 0.95              # asking for a human moves to human_handoff or lowers confidence (measured 1.000)
MIN_HANDOFF_MOVED = 0.80            # ... and actually moves it to human_handoff (measured 1.000 of 638; 0.727
                                    #   with embeddings before TrainParams.handoff_augment, 0.893 TF-IDF only)

SEED = 20240601                     # typo positions and kinds (swap or drop); the same on every machine
MAX_SHOWN = 12                      # failing cases listed in an assertion message
HANDOFF = "human_handoff"
HANDOFF_REQUEST = "I want to talk to a human"
# Social intents that "please" / "thanks" legitimately pull towards thanks: left out of the filler test.
FILLER_EXEMPT = frozenset({"greeting", "goodbye", "thanks", HANDOFF})


# ----------------------------------------------------------------------------- perturbations


def typo(text: str, variant: int = 0, seed: int = SEED) -> str | None:
    """One deterministic typo: swap two adjacent letters or drop one, inside a word of 4+ letters.

    The first letter of the word is kept (people rarely get it wrong). ``None`` when the text
    has no such word (such texts are left out of the typo test).
    """
    rng = random.Random(f"{seed}:{variant}:{text}")
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
    if not candidates:
        return None
    i = rng.choice(candidates)
    w = words[i]
    positions = [j for j in range(1, len(w) - 1) if w[j].isalpha() and w[j + 1].isalpha()]
    if not positions:
        return None
    j = rng.choice(positions)
    swap = rng.random() < 0.5 and w[j] != w[j + 1]
    w = w[:j] + w[j + 1] + w[j] + w[j + 2:] if swap else w[:j] + w[j + 1:]
    return " ".join([*words[:i], w, *words[i + 1:]])


CASINGS: dict[str, Callable[[str], str]] = {"upper": str.upper, "lower": str.lower, "title": str.title}
PUNCTUATION = ("", "?", "!", ".", "!!", "...", "?!")
PLEASE: tuple[Callable[[str], str], ...] = (lambda t: f"please {t}", lambda t: f"{t} please")
THANKS: tuple[Callable[[str], str], ...] = (lambda t: f"{t}, thanks", lambda t: f"{t}, thank you")


def _strip_end(text: str) -> str:
    return text.rstrip(" .?!")


def punctuation_variants(text: str) -> list[str]:
    base = _strip_end(text)
    return [base + p for p in PUNCTUATION if base + p != text]


# --------------------------------------------------------------------------------- helpers


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _invariance(bot: Bot, pairs: Sequence[tuple[str, str]]) -> tuple[float, list[str]]:
    """Share of (original, perturbed) pairs with the same predicted intent, and the broken ones."""
    if not pairs:
        pytest.fail("no utterances to perturb", pytrace=False)
    originals = bot.predict([o for o, _ in pairs])
    perturbed = bot.predict([p for _, p in pairs])
    broken = [
        f"{o!r} -> {p!r}: {a.intent} ({a.confidence:.2f}) became {b.intent} ({b.confidence:.2f})"
        for (o, p), a, b in zip(pairs, originals, perturbed, strict=True)
        if a.intent != b.intent
    ]
    return 1 - len(broken) / len(pairs), broken


def _check_invariance(name: str, bot: Bot, pairs: Sequence[tuple[str, str]], minimum: float, figure) -> None:
    share, broken = _invariance(bot, pairs)
    figure(f"inv_{name}_unchanged", round(share, 4))
    figure(f"inv_{name}_pairs", len(pairs))
    assert share >= minimum, (
        f"INV {name}: the intent stayed the same for {_pct(share)} of {len(pairs)} perturbed utterances, "
        f"required {_pct(minimum)} ({bot.describe()}). {len(broken)} changed, e.g.:\n  "
        + "\n  ".join(broken[:MAX_SHOWN])
    )


# ------------------------------------------------------------------------------ the probes


def test_probes_cover_every_intent_and_are_not_training_data(bot: Bot, probes: Probes, bundled) -> None:
    """The MFT is only meaningful if every intent is probed, with utterances the model never saw."""
    problems = []
    for intent in bot.model.intents:
        n = len(probes.intents.get(intent, []))
        if n < MIN_PROBES_PER_INTENT:
            problems.append(f"intent {intent!r} has {n} probe(s), needs {MIN_PROBES_PER_INTENT}")
    unknown = sorted(set(probes.intents) - set(bot.model.intents))
    if unknown:
        problems.append(f"probes for intents the model does not know: {', '.join(unknown)}")
    seen = {normalize(t): (s, y) for s in ("train", "val", "test") for t, y in bundled.split(s)}
    if bot.dataset is not None:
        seen |= {normalize(t): (s, y) for s in ("train", "val", "test") for t, y in bot.dataset.split(s)}
    for text, intent in [*probes.in_scope(), *((t, OOS) for t in probes.out_of_scope)]:
        if normalize(text) in seen:
            split, label = seen[normalize(text)]
            problems.append(f"probe {text!r} ({intent}) is in the {split} split of the data (as {label})")
    assert not problems, f"{probes.path}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------- minimum functionality


def test_minimum_functionality_every_intent(bot: Bot, probes: Probes, figure) -> None:
    """Every intent answers its clear, unseen probes; all failing intents are reported at once."""
    failing, misclassified, correct, total, worst = [], [], 0, 0, 1.0
    for intent in bot.model.intents:
        texts = probes.intents.get(intent, [])
        preds = bot.predict(texts)
        wrong = [f"{t!r} -> {p.intent} ({p.confidence:.2f})" for t, p in zip(texts, preds, strict=True)
                 if p.intent != intent]
        ok = len(texts) - len(wrong)
        correct, total = correct + ok, total + len(texts)
        share = ok / len(texts) if texts else 0.0
        worst = min(worst, share)
        misclassified += [f"{w} (want {intent})" for w in wrong]
        if share < MIN_CORRECT_PER_INTENT:
            failing.append(f"{intent}: {ok}/{len(texts)} right; " + "; ".join(wrong))
    accuracy = correct / total
    figure("mft_accuracy", round(accuracy, 4))
    figure("mft_probes", total)
    figure("mft_worst_intent_share", round(worst, 4))
    figure("mft_misclassified", "; ".join(misclassified) or "none")
    assert not failing, (
        f"MFT: {len(failing)} intent(s) below {_pct(MIN_CORRECT_PER_INTENT)} of their probes "
        f"({bot.describe()}):\n  " + "\n  ".join(failing)
    )
    assert accuracy >= MIN_MFT_ACCURACY, (
        f"MFT: {correct}/{total} probes right ({_pct(accuracy)}), required {_pct(MIN_MFT_ACCURACY)} "
        f"({bot.describe()}). Misclassified:\n  " + "\n  ".join(misclassified[:MAX_SHOWN])
    )


def test_out_of_scope_probes_fall_back(bot: Bot, probes: Probes, figure) -> None:
    preds = bot.predict(probes.out_of_scope)
    answered = [f"{t!r} -> {p.intent} ({p.confidence:.2f})"
                for t, p in zip(probes.out_of_scope, preds, strict=True) if not p.fallback]
    share = 1 - len(answered) / len(preds)
    figure("oos_probe_fallback", round(share, 4))
    assert share >= MIN_OOS_PROBE_FALLBACK, (
        f"OOS: {_pct(share)} of {len(preds)} unrelated messages got the fallback, required "
        f"{_pct(MIN_OOS_PROBE_FALLBACK)} ({bot.describe()}). Answered as an intent instead:\n  "
        + "\n  ".join(answered[:MAX_SHOWN])
    )


# ----------------------------------------------------------------------------------- invariance


def test_invariance_typos(bot: Bot, base_utterances: list[tuple[str, str]], figure) -> None:
    pairs = [(t, p) for t, _ in base_utterances for v in range(2) if (p := typo(t, v)) is not None]
    _check_invariance("typo", bot, pairs, MIN_INV_TYPO, figure)


def test_invariance_casing(bot: Bot, base_utterances: list[tuple[str, str]], figure) -> None:
    pairs = [(t, f(t)) for t, _ in base_utterances for f in CASINGS.values() if f(t) != t]
    _check_invariance("casing", bot, pairs, MIN_INV_CASING, figure)


def test_invariance_trailing_punctuation(bot: Bot, base_utterances: list[tuple[str, str]], figure) -> None:
    pairs = [(t, p) for t, _ in base_utterances for p in punctuation_variants(t)]
    _check_invariance("punctuation", bot, pairs, MIN_INV_PUNCTUATION, figure)


def _filler_pairs(base: Sequence[tuple[str, str]], fillers: Sequence[Callable[[str], str]]) -> list[tuple[str, str]]:
    return [(t, f(_strip_end(t))) for t, i in base if i not in FILLER_EXEMPT for f in fillers]


def test_invariance_polite_filler_please(bot: Bot, base_utterances: list[tuple[str, str]], figure) -> None:
    _check_invariance("please", bot, _filler_pairs(base_utterances, PLEASE), MIN_INV_PLEASE, figure)


def test_invariance_polite_filler_thanks(bot: Bot, base_utterances: list[tuple[str, str]], figure) -> None:
    _check_invariance("thanks", bot, _filler_pairs(base_utterances, THANKS), MIN_INV_THANKS, figure)


def test_perturbations_are_deterministic_and_real() -> None:
    """The typo generator must change the text, the same way on every run (seeded, no global state)."""
    text = "where is my parcel, it should have arrived yesterday"
    assert typo(text, 0) == typo(text, 0)
    assert typo(text, 0) != text
    assert {typo(text, v) for v in range(6)} != {typo(text, 0)}
    assert typo("hi ok", 0) is None
    assert all(len(typo(text, v) or "") >= len(text) - 1 for v in range(20))
    assert punctuation_variants("is it in stock?") == [
        "is it in stock", "is it in stock!", "is it in stock.", "is it in stock!!", "is it in stock...",
        "is it in stock?!"]


# ---------------------------------------------------------------------------------- directional


def test_directional_asking_for_a_human(bot: Bot, base_utterances: list[tuple[str, str]], figure) -> None:
    """Adding "I want to talk to a human" moves the message to human_handoff, or at least never
    makes the bot more sure of its first answer, nor sends it to a third intent or the fallback."""
    if HANDOFF not in bot.model.intents:
        pytest.skip(f"the bot has no {HANDOFF} intent")
    texts = [t for t, i in base_utterances if i != HANDOFF]
    before = bot.predict(texts)
    after = bot.predict([f"{_strip_end(t)}. {HANDOFF_REQUEST}" for t in texts])
    broken, stayed, moved = [], [], 0
    for t, a, b in zip(texts, before, after, strict=True):
        change = f"{t!r} + {HANDOFF_REQUEST!r}: {a.intent} ({a.confidence:.2f}) -> {b.intent} ({b.confidence:.2f})"
        if b.intent == HANDOFF:
            moved += 1
        elif b.intent != a.intent or b.confidence > a.confidence:
            broken.append(change)
        else:
            stayed.append(change)
    ok_share, moved_share = 1 - len(broken) / len(texts), moved / len(texts)
    figure("dir_handoff_ok", round(ok_share, 4))
    figure("dir_handoff_moved", round(moved_share, 4))
    figure("dir_handoff_messages", len(texts))
    assert ok_share >= MIN_DIR_HANDOFF, (
        f"DIR: after asking for a human, {_pct(ok_share)} of {len(texts)} messages moved to {HANDOFF} or lost "
        f"confidence, required {_pct(MIN_DIR_HANDOFF)} ({bot.describe()}). Broken:\n  "
        + "\n  ".join(broken[:MAX_SHOWN])
    )
    assert moved_share >= MIN_HANDOFF_MOVED, (
        f"DIR: only {_pct(moved_share)} of {len(texts)} messages moved to {HANDOFF} after "
        f"{HANDOFF_REQUEST!r}, required {_pct(MIN_HANDOFF_MOVED)} ({bot.describe()}). Not moved, e.g.:\n  "
        + "\n  ".join(stayed[:MAX_SHOWN])
    )
