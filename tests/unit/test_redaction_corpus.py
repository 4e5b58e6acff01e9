"""Redaction measured on a labelled corpus: recall and precision per kind, with floors.

``redaction_corpus.yaml`` holds strings written for this test: positives of every kind in the
layouts people really paste (no-break spaces, zero-width characters, full-width digits, dashes,
spelled-out e-mails) and hard negatives that look like PII but are not (order numbers, tracking
codes, prices, dates, SKUs, brands). A kind's recall counts expected spans fully covered by a
match of that kind; its precision counts matches that overlap an expected span of that kind.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from botkit.core.redact import KINDS, find_pii, redact

CORPUS = yaml.safe_load((Path(__file__).parent / "redaction_corpus.yaml").read_text(encoding="utf-8"))
RECALL_FLOOR = 0.95
PRECISION_FLOOR = 0.95


def _score() -> tuple[dict[str, tuple[float, float, int, int]], list[str]]:
    expected: Counter[str] = Counter()
    recalled: Counter[str] = Counter()
    found: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    misses: list[str] = []
    for row in CORPUS:
        text = row["text"]
        spans = [(kind, text.index(value), text.index(value) + len(value)) for kind, value in row["pii"]]
        matches = find_pii(text)
        for kind, start, end in spans:
            expected[kind] += 1
            if any(m.kind == kind and m.start <= start and m.end >= end for m in matches):
                recalled[kind] += 1
            else:
                misses.append(f"missed {kind}: {text!r} -> {redact(text)!r}")
        for m in matches:
            found[m.kind] += 1
            if any(kind == m.kind and m.start < end and start < m.end for kind, start, end in spans):
                correct[m.kind] += 1
            else:
                misses.append(f"false {m.kind}: {text!r} -> {redact(text)!r}")
    table = {k: (recalled[k] / expected[k] if expected[k] else 1.0, correct[k] / found[k] if found[k] else 1.0,
                 expected[k], found[k]) for k in KINDS}
    return table, misses


def test_corpus_has_at_least_300_strings_with_positives_of_every_kind_and_hard_negatives() -> None:
    assert len(CORPUS) >= 300
    kinds = Counter(kind for row in CORPUS for kind, _ in row["pii"])
    assert set(kinds) == set(KINDS), kinds
    assert min(kinds.values()) >= 15
    assert sum(1 for row in CORPUS if not row["pii"]) >= 100


def test_recall_and_precision_per_kind_meet_the_floors(capsys: pytest.CaptureFixture[str]) -> None:
    table, misses = _score()
    with capsys.disabled():
        print(f"\n{'kind':8} {'recall':>7} {'precision':>9} {'expected':>8} {'found':>6}")
        for kind, (recall, precision, n_expected, n_found) in table.items():
            print(f"{kind:8} {recall:7.3f} {precision:9.3f} {n_expected:8d} {n_found:6d}")
        for line in misses:
            print("  " + line)
    low = {k: v[:2] for k, v in table.items() if v[0] < RECALL_FLOOR or v[1] < PRECISION_FLOOR}
    assert not low, (low, misses)


def test_no_planted_value_survives_redaction_in_any_layout() -> None:
    # Stronger than recall: the digits/letters of every planted value are gone from the output,
    # whatever kind the match was labelled.
    leaks = []
    for row in CORPUS:
        out = redact(row["text"])
        for kind, value in row["pii"]:
            if value in out:
                leaks.append((kind, row["text"], out))
    assert not leaks


def test_redact_is_idempotent_on_the_whole_corpus() -> None:
    for row in CORPUS:
        once = redact(row["text"])
        assert redact(once) == once, row["text"]


def test_complete_dates_side_by_side_are_not_a_phone_number() -> None:
    assert redact("delivery 12/03/2026 10/11/2026") == "delivery 12/03/2026 10/11/2026"


@pytest.mark.parametrize(
    "text",
    [
        "a (at) " * 1_500,
        "x at y dot " * 1_000,
        "DOB " * 2_500,
        "Hauptstraße 1 " * 700,
        "my name is " * 900,
        "cvc exp 12/" * 900,
        "\u200b4" * 5_000,
        "4 " * 5_000,
        "Kind regards, Jane " * 500,
        "１２３４ " * 2_000,
    ],
    ids=["spelled-at", "at-dot", "dob", "streets", "names", "card-extras", "zero-width-digits", "digit-pairs",
         "regards", "full-width"],
)
def test_hostile_10000_character_input_to_the_word_rules_finishes_quickly(text: str) -> None:
    import time

    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 0.5
