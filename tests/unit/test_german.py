"""The German bot: shopbot-de is a valid data set with shopbot's shape, meets its floors, and
treats umlauts and their ae/oe/ue/ss spellings alike."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from botkit.core.config import BUNDLED_DATA
from botkit.core.data import OOS, conflicts, load
from botkit.core.evaluate import evaluate
from botkit.core.features import fold_umlauts, polite_variants
from botkit.core.model import IntentModel, TrainParams

DE = BUNDLED_DATA.parent / "shopbot-de"
MIN_IN_SCOPE, MIN_OOS_RECALL = 0.85, 0.75  # the floors on the test split


@pytest.fixture(scope="module")
def de():
    return load("shopbot-de")


@pytest.fixture(scope="module")
def model_de(de) -> IntentModel:
    return IntentModel.train(de, TrainParams(seed=42))


def test_shopbot_de_has_the_shape_of_shopbot(de) -> None:
    en = load()
    assert de.language == "de" and en.language == "en"
    assert de.intents == en.intents and len(de.intents) == 30
    for split, (n_in, n_oos) in {"train": (44, 120), "val": (12, 60), "test": (18, 160)}.items():
        counts = Counter(y for _, y in de.split(split))
        assert counts.pop(OOS) == n_oos
        assert set(counts.values()) == {n_in}, split
    for f in sorted((DE / "intents").glob("*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        assert len(doc["replies"]) == 3 and doc["description"]


def test_shopbot_de_has_no_leakage_and_no_conflicting_near_duplicates(de) -> None:
    de.validate()  # leakage across splits raises
    folded = Counter(fold_umlauts(t).lower().strip(" ?!.") for s in ("train", "val", "test") for t, _ in de.split(s))
    assert not [t for t, n in folded.items() if n > 1]
    assert conflicts(de) == []


def test_the_bot_says_du_not_sie(de) -> None:
    """One form of address throughout: the replies say "du", never the formal "Sie"/"Ihnen"."""
    texts = [r for rs in de.replies.values() for r in rs] + list(de.fallback_replies)
    formal = [t for t in texts if any(w in t.replace(",", " ").replace(".", " ").split()
                                      for w in ("Sie", "Ihnen", "Ihr", "Ihre", "Ihren"))]
    assert not formal, formal
    assert sum("du" in t.lower().split() or "dir" in t.lower().split() or "dein" in t.lower() for t in texts) >= 40


def test_german_text_is_written_like_people_type(de) -> None:
    """Umlauts, their ae/oe/ue spellings, lower-case messages and English loanwords all occur."""
    texts = [t for s in ("train", "val", "test") for t, _ in de.split(s)]
    assert sum(any(c in t for c in "äöüß") for t in texts) >= 300
    assert sum(any(w in t.lower() for w in ("ae", "oe", "ue", "ss")) and not any(c in t for c in "äöüß")
               for t in texts) >= 100
    assert sum(t == t.lower() for t in texts) >= 500
    loanwords = ("account", "tracking", "code", "support", "login", "sale", "app", "checkout", "cancel")
    assert sum(any(w in t.lower() for w in loanwords) for t in texts) >= 50


def test_german_bot_meets_its_floors_on_the_test_split(de, model_de: IntentModel) -> None:
    m = evaluate(model_de, de.test, measure_latency=False).metrics
    assert m["in_scope_accuracy"] >= MIN_IN_SCOPE, m["in_scope_accuracy"]
    assert m["oos_recall"] >= MIN_OOS_RECALL, m["oos_recall"]


@pytest.mark.parametrize(("a", "b"), [
    ("Ich möchte eine Rücksendung anmelden", "Ich moechte eine Ruecksendung anmelden"),
    ("Wie ändere ich meine Straße im Konto", "Wie aendere ich meine Strasse im Konto"),
    ("GRÖSSENTABELLE FÜR HOSEN", "groessentabelle fuer hosen"),
])
def test_umlaut_spellings_get_the_same_answer(model_de: IntentModel, a: str, b: str) -> None:
    pa, pb = model_de.predict([a, b])
    assert (pa.intent, pa.confidence) == (pb.intent, pb.confidence)


def test_fold_umlauts_and_german_polite_suffixes() -> None:
    assert fold_umlauts("Größe, Übergröße, Straße, ÄRGER") == "Groesse, Uebergroesse, Strasse, AeRGER"
    extra = polite_variants([("wo ist mein Paket", "track_package")] * 50, 1.0, seed=1, language="de")
    assert {t.removeprefix("wo ist mein Paket") for t, _ in extra} <= {", danke", " bitte", ", vielen dank",
                                                                       " danke schön", ", dankeschön", " thx", ", lg"}
