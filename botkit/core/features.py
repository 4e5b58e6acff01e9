"""Text preparation and feature building shared by training and prediction.

Why here and not inside the scikit-learn pipeline: a custom transformer or preprocessor
function would be a foreign type in the skops artefact (loading it would mean trusting code);
the stored pipeline stays plain TF-IDF + a linear classifier, and the steps that need no
fitted state (umlaut folding, the embedding lookup) live in this module.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from botkit.core.data import OOS

__all__ = ["HANDOFF_INTENT", "POLITE_SUFFIXES", "RECIPES", "fold_umlauts", "handoff_variants", "polite_variants",
           "stack"]

# tfidf: word + char n-grams; emb: static embeddings only; tfidf+emb: both, side by side.
RECIPES = ("tfidf", "emb", "tfidf+emb")

# Per language: what people tack onto a request. Learning a share of requests with these
# keeps "where is my parcel, thanks" from reading as the `thanks` intent.
POLITE_SUFFIXES = {
    "en": (", thanks", ", thank you", " please", " thx", ", cheers"),
    "de": (", danke", " bitte", ", vielen dank", " danke schön", ", dankeschön", " thx", ", lg"),
}

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ẞ": "SS"})


def fold_umlauts(text: str) -> str:
    """``Rückgabe`` and ``Rueckgabe``, ``Straße`` and ``Strasse`` become the same string.

    Germans type both forms (keyboards without umlauts, habits from SMS); TF-IDF's own accent
    stripping would make ``ruckgabe`` of one and ``rueckgabe`` of the other.
    """
    return text.translate(_FOLD)


def polite_variants(examples: Sequence[tuple[str, str]], share: float, seed: int,
                    language: str = "en") -> list[tuple[str, str]]:
    """Extra training pairs: a seeded share of in-scope texts with a polite suffix, same label."""
    rng = random.Random(seed)
    suffixes = POLITE_SUFFIXES.get(language, POLITE_SUFFIXES["en"])
    return [(f"{t.rstrip('.!? ')}{rng.choice(suffixes)}", y)
            for t, y in examples if y != OOS and rng.random() < share]


HANDOFF_INTENT = "human_handoff"


def handoff_variants(examples: Sequence[tuple[str, str]], share: float, seed: int,
                     intent: str = HANDOFF_INTENT) -> list[tuple[str, str]]:
    """Extra training pairs: a request followed by one of the data's own requests for a person,
    labelled as the handoff intent.

    Why: averaged embeddings dilute "... I want to talk to a human" at the end of a long request;
    a customer who asks for a person should get one whatever came before. No-op without that intent.
    """
    asks = [t for t, y in examples if y == intent]
    if not asks or share <= 0:
        return []
    rng = random.Random(f"{seed}:handoff")
    return [(f"{t.rstrip('.!? ')}. {rng.choice(asks)}", intent)
            for t, y in examples if y not in (OOS, intent) and rng.random() < share]


def stack(tfidf: sp.spmatrix | None, emb: np.ndarray | None, weight: float) -> sp.csr_matrix:
    """One feature matrix from the sparse TF-IDF block and the (weighted) dense embedding block."""
    parts = []
    if tfidf is not None:
        parts.append(sp.csr_matrix(tfidf))
    if emb is not None:
        parts.append(sp.csr_matrix(emb * np.float32(weight)))
    if not parts:
        raise ValueError("a recipe needs TF-IDF features, embeddings or both")
    return parts[0] if len(parts) == 1 else sp.hstack(parts, format="csr")
