"""Behaviour tests (CheckList style) for the German bot, shopbot-de.

The same ideas as ``test_behaviour.py`` with German perturbations: a typo, the casing,
umlauts and ß typed as ae/oe/ue/ss (keyboards without umlauts), polite filler ("bitte",
"danke", "vielen Dank"), and a request for a person moving a message to ``human_handoff``.
The bot is trained here on ``shopbot-de`` with the recipe its language gets (``auto``).
Thresholds sit a margin below what was measured when they were written (noted per line).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import yaml
from test_behaviour import CASINGS, FILLER_EXEMPT, MAX_SHOWN, _strip_end, typo

from botkit.core.data import OOS, SPLITS, Dataset, load, normalize
from botkit.core.features import fold_umlauts
from botkit.core.model import RECIPE_BY_LANGUAGE, IntentModel, TrainParams

PROBES = Path(__file__).with_name("probes_de.yaml")
HANDOFF_REQUEST = "ich will mit einem Menschen sprechen"

MIN_MFT_ACCURACY = 0.85       # (measured 1.000, 90/90)
MIN_OOS_PROBE_FALLBACK = 0.75  # (measured 0.85, 17/20)
MIN_INV_TYPO = 0.80           # (measured 0.878)
MIN_INV_CASING = 0.99         # (measured 1.000: the features lowercase)
MIN_INV_UMLAUT = 0.99         # ä->ae, ß->ss (measured 1.000: the model folds umlauts first)
MIN_INV_BITTE = 0.90          # (measured 0.941)
MIN_INV_DANKE = 0.90          # (measured 0.937)
MIN_DIR_HANDOFF = 0.95        # moved to human_handoff or less sure of the first answer (measured 1.000)
# Before the handoff augmentation (TrainParams.handoff_augment) only 0.385 moved: in a long German
# request the handoff clause was outweighed by the request's own words.
MIN_HANDOFF_MOVED = 0.80      # actually moved to human_handoff (measured 0.962)

BITTE: tuple[Callable[[str], str], ...] = (lambda t: f"bitte {t}", lambda t: f"{t} bitte")
DANKE: tuple[Callable[[str], str], ...] = (lambda t: f"{t}, danke", lambda t: f"{t}, vielen Dank")
UMLAUT_SPELLING = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


@pytest.fixture(scope="module")
def data_de() -> Dataset:
    return load("shopbot-de")


@pytest.fixture(scope="module")
def bot_de(data_de: Dataset) -> IntentModel:
    return IntentModel.train(data_de, TrainParams(seed=42))


@pytest.fixture(scope="module")
def probes_de() -> dict:
    return yaml.safe_load(PROBES.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def base_de(probes_de: dict, data_de: Dataset) -> list[tuple[str, str]]:
    """Probes plus the in-scope test split: the utterances the invariance tests perturb."""
    return [(t, i) for i, ts in probes_de["intents"].items() for t in ts] + [e for e in data_de.test if e[1] != OOS]


def _check(name: str, bot: IntentModel, pairs: Sequence[tuple[str, str]], minimum: float, figure) -> None:
    assert pairs, f"INV {name}: nothing to perturb"
    a, b = bot.predict([o for o, _ in pairs]), bot.predict([p for _, p in pairs])
    broken = [f"{o!r} -> {p!r}: {x.intent} became {y.intent}" for (o, p), x, y in zip(pairs, a, b, strict=True)
              if x.intent != y.intent]
    share = 1 - len(broken) / len(pairs)
    figure(f"de_inv_{name}_unchanged", round(share, 4))
    assert share >= minimum, (f"INV {name} (de): {share:.1%} of {len(pairs)} unchanged, required {minimum:.0%}:\n  "
                              + "\n  ".join(broken[:MAX_SHOWN]))


def test_german_bot_uses_the_recipe_of_its_language(bot_de: IntentModel) -> None:
    assert bot_de.language == "de" and bot_de.params.recipe == RECIPE_BY_LANGUAGE["de"]


def test_probes_cover_every_intent_and_are_not_training_data(bot_de: IntentModel, probes_de: dict,
                                                             data_de: Dataset) -> None:
    assert set(probes_de["intents"]) == set(bot_de.intents)
    assert all(len(v) >= 3 for v in probes_de["intents"].values())
    seen = {normalize(fold_umlauts(t)) for s in SPLITS for t, _ in data_de.split(s)}
    leaked = [t for ts in [*probes_de["intents"].values(), probes_de["out_of_scope"]] for t in ts
              if normalize(fold_umlauts(t)) in seen]
    assert not leaked, f"probes found in the shopbot-de data: {leaked}"


def test_minimum_functionality_german(bot_de: IntentModel, probes_de: dict, figure) -> None:
    pairs = [(t, i) for i, ts in probes_de["intents"].items() for t in ts]
    preds = bot_de.predict([t for t, _ in pairs])
    wrong = [f"{t!r} -> {p.intent} (want {i})" for (t, i), p in zip(pairs, preds, strict=True) if p.intent != i]
    acc = 1 - len(wrong) / len(pairs)
    figure("de_mft_accuracy", round(acc, 4))
    assert acc >= MIN_MFT_ACCURACY, f"MFT (de) {acc:.1%}:\n  " + "\n  ".join(wrong[:MAX_SHOWN])


def test_out_of_scope_probes_fall_back_german(bot_de: IntentModel, probes_de: dict, figure) -> None:
    preds = bot_de.predict(probes_de["out_of_scope"])
    answered = [f"{t!r} -> {p.intent}" for t, p in zip(probes_de["out_of_scope"], preds, strict=True) if not p.fallback]
    share = 1 - len(answered) / len(preds)
    figure("de_oos_probe_fallback", round(share, 4))
    assert share >= MIN_OOS_PROBE_FALLBACK, f"OOS (de) {share:.1%}:\n  " + "\n  ".join(answered)


def test_invariance_typos_german(bot_de: IntentModel, base_de, figure) -> None:
    pairs = [(t, p) for t, _ in base_de for v in range(2) if (p := typo(t, v)) is not None]
    _check("typo", bot_de, pairs, MIN_INV_TYPO, figure)


def test_invariance_casing_german(bot_de: IntentModel, base_de, figure) -> None:
    pairs = [(t, f(t)) for t, _ in base_de for f in CASINGS.values() if f(t) != t]
    _check("casing", bot_de, pairs, MIN_INV_CASING, figure)


def test_invariance_umlauts_typed_as_ae_oe_ue_ss(bot_de: IntentModel, base_de, figure) -> None:
    pairs = [(t, t.translate(UMLAUT_SPELLING)) for t, _ in base_de if t.translate(UMLAUT_SPELLING) != t]
    assert len(pairs) >= 100
    _check("umlaut", bot_de, pairs, MIN_INV_UMLAUT, figure)


def _filler(base: Sequence[tuple[str, str]], fillers) -> list[tuple[str, str]]:
    return [(t, f(_strip_end(t))) for t, i in base if i not in FILLER_EXEMPT for f in fillers]


def test_invariance_polite_bitte(bot_de: IntentModel, base_de, figure) -> None:
    _check("bitte", bot_de, _filler(base_de, BITTE), MIN_INV_BITTE, figure)


def test_invariance_polite_danke(bot_de: IntentModel, base_de, figure) -> None:
    _check("danke", bot_de, _filler(base_de, DANKE), MIN_INV_DANKE, figure)


def test_directional_asking_for_a_person_german(bot_de: IntentModel, probes_de: dict, figure) -> None:
    """Adding "ich will mit einem Menschen sprechen" moves a request to human_handoff, or at least
    never makes the bot more sure of its first answer nor sends it to a third intent."""
    texts = [t for i, ts in probes_de["intents"].items() if i not in FILLER_EXEMPT for t in ts]
    before = bot_de.predict(texts)
    after = bot_de.predict([f"{_strip_end(t)}, {HANDOFF_REQUEST}" for t in texts])
    moved = [b.intent == "human_handoff" for b in after]
    ok = [m or (b.intent == a.intent and b.confidence <= a.confidence)
          for m, a, b in zip(moved, before, after, strict=True)]
    broken = [f"{t!r}: {a.intent} ({a.confidence:.2f}) -> {b.intent} ({b.confidence:.2f})"
              for t, a, b, k in zip(texts, before, after, ok, strict=True) if not k]
    figure("de_dir_handoff_ok", round(sum(ok) / len(ok), 4))
    figure("de_dir_handoff_moved", round(sum(moved) / len(moved), 4))
    assert sum(ok) / len(ok) >= MIN_DIR_HANDOFF, "DIR (de):\n  " + "\n  ".join(broken[:MAX_SHOWN])
    assert sum(moved) / len(moved) >= MIN_HANDOFF_MOVED, f"DIR (de): {sum(moved)}/{len(moved)} moved to human_handoff"
