"""PII redaction for user text, applied before anything is stored or logged.

Chat messages are the one input a bot cannot vet in advance: customers paste e-mail
addresses, phone numbers, card numbers and IBANs into them. The service passes every message
through :func:`redact` before it reaches the event log, a log line or a training set, so that
nothing downstream has to be trusted with raw PII.

**Normalise, then match.** The rules run on a skeleton of the text (``_normalise``): NFKC
(full-width digits and ``＠`` become ASCII), format characters such as zero-width spaces and
soft hyphens dropped, every space (no-break, narrow, ideographic, separators, newlines) one
space, every dash ``-``. Matches are mapped back to the original, so a redaction swallows the
invisible characters inside it and the rest of the message is kept as sent.

**What is found** (in this order; a later rule never claims characters an earlier one took):
``<EMAIL>`` (also spelled out: ``jane (at) example (dot) com``), ``<IBAN>`` (mod-97),
``<CARD>`` (Luhn), ``<CVC>`` and ``<EXPIRY>`` (after a keyword, or bare right after a card),
``<DOB>`` (a date after a birth keyword: "DOB", "born on", "geboren am", "Geburtsdatum"),
``<ADDRESS>`` (street + house number in German form, ``Hauptstraße 12``, ``Berliner Str. 5a``,
or English form, ``221B Baker Street``, with the postcode and city that follow),
``<NAME>`` (only a name the writer introduces: "my name is Jane Doe", "mein Name ist",
"Kind regards, Jane"), ``<PHONE>`` (German and international layouts, see ``_numbers``).

**What is left out, and why.** Free-form person names and addresses without a street word
stay in the text. Recognising them needs a statistical NER model (presidio's analyzer wraps
spaCy models of several hundred MB that cannot be installed offline and add ~1 s per worker
start and milliseconds per message), and even then its precision on short shop chats is poor:
product names ("Jack Wolfskin", "Marc O'Polo"), brand and city names look like people. A rule
that redacts every capitalised word pair would destroy the text the monitor and retraining
need. Dates without a birth keyword are kept (delivery dates are the bot's business), as are
bare years ("born in 1987"). Contact data (e-mail, phone), payment data and introduced names
are what makes a message identifying; those are covered. The labelled corpus in
``tests/unit/redaction_corpus.yaml`` measures recall and precision per kind.

Every pattern is precompiled and bounded, so matching time is linear in the input and no
message can trigger catastrophic backtracking.
"""

from __future__ import annotations

import re
from typing import Final

from botkit.core.redact._base import Match, Spans
from botkit.core.redact._normalise import skeleton
from botkit.core.redact._numbers import find_cards, find_ibans, find_phones, iban_valid, luhn_valid
from botkit.core.redact._words import find_addresses, find_card_extras, find_dobs, find_emails, find_names

__all__ = ["KINDS", "Match", "find_pii", "iban_valid", "luhn_valid", "normalise", "redact"]

KINDS: Final = ("EMAIL", "IBAN", "CARD", "CVC", "EXPIRY", "PHONE", "DOB", "ADDRESS", "NAME")
_ANY_DIGIT: Final = re.compile(r"[0-9]")
_NAME_HINTS: Final = ("name", "heiße", "heisse", "regards", "grüße", "cheers", "sincerely", "mfg", "lg,", "i am",
                      "i'm", "i’m", "ich bin")


def normalise(text: str) -> str:
    """The skeleton the rules match on (NFKC, no format characters, one kind of space and dash)."""
    return skeleton(text)[0]


def _find(text: str) -> list[Match]:
    """Every match on an already normalised ``text``."""
    matches = find_emails(text)
    claimed = [(m.start, m.end) for m in matches]
    if _ANY_DIGIT.search(text):
        ibans, iban_shields = find_ibans(text, Spans(claimed))
        claimed += [(m.start, m.end) for m in ibans]
        cards, card_shields = find_cards(text, Spans(claimed))
        claimed += [(m.start, m.end) for m in cards]
        extras = find_card_extras(text, cards, Spans(claimed))
        claimed += [(m.start, m.end) for m in extras]
        dobs = find_dobs(text, Spans(claimed))
        claimed += [(m.start, m.end) for m in dobs]
        addresses = find_addresses(text, Spans(claimed))
        claimed += [(m.start, m.end) for m in addresses]
        phones = find_phones(text, Spans([*claimed, *iban_shields, *card_shields]))
        claimed += [(m.start, m.end) for m in phones]
        matches += ibans + cards + extras + dobs + addresses + phones
    low = text.lower()
    if any(h in low for h in _NAME_HINTS):
        matches += find_names(text, Spans(claimed))
    return sorted(matches, key=lambda m: m.start)


def find_pii(text: str) -> list[Match]:
    """Every piece of PII in ``text``, sorted by position and never overlapping.

    Positions refer to ``text`` as given (matching ran on its skeleton); a match spans any
    invisible characters inside it. Exposed separately from :func:`redact` so callers can count
    or audit what was found without keeping the raw values.
    """
    norm, origin = skeleton(text)
    matches = _find(norm)
    if origin is None:
        return matches
    return [Match(m.kind, origin[m.start], origin[m.end - 1] + 1) for m in matches]


def redact(text: str) -> str:
    """``text`` with every piece of PII replaced by ``<KIND>`` (``<EMAIL>``, ``<CARD>``, ...).

    Runs until nothing more is found, so ``redact(redact(x)) == redact(x)`` holds by
    construction: a replacement can change the neighbourhood of a number that was shielded
    before. It terminates because every match holds a digit, an ``@`` or a word and the
    replacement is shorter in such characters.
    """
    for _ in range(8):
        matches = find_pii(text)
        if not matches:
            break
        parts: list[str] = []
        pos = 0
        for m in matches:
            parts += (text[pos : m.start], f"<{m.kind}>")
            pos = m.end
        parts.append(text[pos:])
        text = "".join(parts)
    return text
