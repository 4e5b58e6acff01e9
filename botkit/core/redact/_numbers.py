"""PII redaction for user text, applied before anything is stored or logged.

Chat messages are the one input a bot cannot vet in advance: customers paste e-mail
addresses, phone numbers, card numbers and IBANs into them. The service passes every message
through :func:`redact` before it reaches the event log, a log line or a training set, so that
nothing downstream has to be trusted with raw PII.

The rules run in this order, and a later rule never claims characters an earlier one took:

1. ``<EMAIL>``: local part (plus-addressing included) ``@`` domain with subdomains and a
   letters-only top-level domain.
2. ``<IBAN>``: country code, two check digits and up to 30 letters/digits, optionally spaced
   in groups of four; redacted only when the ISO 7064 mod-97 check passes. An IBAN-shaped
   token that fails the check is left alone, and rule 4 does not look inside it.
3. ``<CARD>``: 13-19 digits, contiguous or grouped by single spaces or dashes as cards are
   printed (4-4-4-4, 4-6-5, ...); redacted only when the Luhn check passes. A failing number
   in a card layout (4-4-4-4, 4-4-4-4-x, 4-6-4, 4-6-5) is left alone and rule 4 does not look
   inside it either; a failing number in any other layout may still be a phone number.
4. ``<PHONE>``: 7-15 digits (E.164 allows at most 15) that start like a phone number: ``+``
   and a country code, ``00``, a national trunk ``0`` (``030 12345678``, ``07700 900123``),
   an area code in parentheses, or the US 3-3-4 layout (``555-123-4567``). Groups may be
   separated by one space, dot, dash or slash. Numbers with none of these starts (order
   numbers, sizes, years, prices) and dates such as ``05.11.2026`` are not phones.

Cards and IBANs are validated because a checksum makes them certain; phones have no
checksum, so the phone rule leans on layout and errs towards redacting a number that merely
looks like a phone. Every pattern is precompiled and built from possessive or bounded
quantifiers, so matching time is linear in the input and no message can trigger
catastrophic backtracking.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["Match", "find_pii", "iban_valid", "luhn_valid", "redact"]


@dataclass(frozen=True, slots=True)
class Match:
    """One piece of PII: ``text[start:end]`` is replaced by ``<kind>``.

    ``kind`` is one of ``"EMAIL"``, ``"IBAN"``, ``"CARD"``, ``"PHONE"``.
    """

    kind: str
    start: int
    end: int


_EMAIL: Final = re.compile(
    r"(?<![\w.%+-])"  # the whole local part, never the tail of a longer word
    r"[\w.%+-]++@"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"  # domain labels, subdomains included
    r"[^\W\d_]{2,63}"  # top-level domain: letters only
    r"(?![\w-])"
)
# The local part just before an "@" (RFC 5321 caps it at 64 characters). Matching starts
# there instead of scanning every word of the message for an e-mail address.
_LOCAL_PART: Final = re.compile(r"[\w.%+-]{1,64}\Z")
_LOCAL_MAX: Final = 64

# Matches start at the two check digits, after checking the country code behind them: a
# pattern that starts with a digit is skipped over ordinary words much faster. Letters are
# accepted in either case because people type IBANs in lower case too.
_IBAN: Final = re.compile(
    r"[0-9]{2}(?<=[A-Za-z]{2}[0-9]{2})(?<![A-Za-z0-9][A-Za-z]{2}[0-9]{2})"
    r"(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])"
)
_IBAN_COMPACT: Final = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
# Every real BBAN holds at least this many digits; it keeps words such as "ab12 this that" out.
_IBAN_MIN_BBAN_DIGITS: Final = 8

# Maximal runs of digits joined by single spaces or dashes: where card numbers live.
# A match always starts a digit run: scanning resumes after a chain, where no digit follows.
_CARD_CHAIN: Final = re.compile(r"[0-9]++(?:[ \-][0-9]++)*+")
_CARD_MIN_DIGITS: Final = 13
_CARD_MAX_DIGITS: Final = 19

# Digit groups a phone number may be written in: one space, dot, dash or slash between
# groups, or parentheses around an area code or a "(0)" trunk. Never glued to a word, an order
# "#", a currency sign or the decimals of another number.
_PHONE_CHAIN: Final = re.compile(
    r"[+(0-9](?<![\w#+@€$£¥][+(0-9])(?<![0-9][.,][+(0-9])"  # first character, then what precedes it
    r"[0-9]*+(?<![+(])"  # at least one digit, also after a "+" or "("
    r"(?:(?:[ .\-/]|\)[ .\-]?|[ ]?\()[0-9]++)*+"
)
_PHONE_MIN_DIGITS: Final = 7
_PHONE_MAX_DIGITS: Final = 15
_NANP: Final = re.compile(r"(?:\([0-9]{3}\)[ ]?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}")
_DATE: Final = re.compile(
    r"(?<![0-9.\-/])"
    r"(?:[0-9]{1,2}([./\-])[0-9]{1,2}\1(?:[0-9]{4}|[0-9]{2})|[0-9]{4}([./\-])[0-9]{1,2}\2[0-9]{1,2})"
    r"(?![0-9]|[./\-][0-9])"
)

_ANY_DIGIT: Final = re.compile(r"[0-9]")
_DIGIT_RUN: Final = re.compile(r"[0-9]+")
_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d, minus 9 when that exceeds 9


def luhn_valid(digits: str) -> bool:
    """True when the Luhn checksum of a card number passes; spaces and dashes are ignored.

    Every payment card number ends in a Luhn check digit, so a number that fails is not a card
    and is not redacted as one.
    """
    compact = digits.replace(" ", "").replace("-", "")
    if not (compact.isascii() and compact.isdigit()):
        return False
    reverse = compact[::-1]
    total = sum(map(int, reverse[0::2])) + sum(_DOUBLED[int(ch)] for ch in reverse[1::2])
    return total % 10 == 0


def iban_valid(s: str) -> bool:
    """True when ``s`` (spaces and letter case ignored) passes the ISO 13616 / ISO 7064 mod-97 check.

    The check catches every single-character typo, so a token that fails is not an IBAN.
    Check digits outside 02-98 are rejected as the standard requires.
    """
    compact = s.replace(" ", "").upper()
    if not _IBAN_COMPACT.fullmatch(compact) or not 2 <= int(compact[2:4]) <= 98:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


class _Spans:
    """Claimed character ranges, merged, answering "does [start, end) touch any?" in O(log n)."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [start for start, _ in merged]
        self._ends = [end for _, end in merged]

    def overlaps(self, start: int, end: int) -> bool:
        k = bisect.bisect_left(self._starts, end)
        return k > 0 and self._ends[k - 1] > start


def _runs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _DIGIT_RUN.finditer(text, start, end)]


def _find_ibans(text: str, claimed: _Spans) -> tuple[list[Match], list[tuple[int, int]]]:
    """IBANs, plus the IBAN-shaped tokens that failed the check (shielded from the phone rule)."""
    found: list[Match] = []
    shields: list[tuple[int, int]] = []
    for m in _IBAN.finditer(text):
        start = m.start() - 2  # the country code in front of the check digits
        candidate = text[start : m.end()]
        if claimed.overlaps(start, m.end()):
            continue
        if sum(ch.isdigit() for ch in candidate[4:]) < _IBAN_MIN_BBAN_DIGITS:
            continue
        # The pattern cannot know where the IBAN stops when a four-letter word follows it
        # ("... 7034 THEN"), so also try each shorter prefix that ends before a space.
        ends = [len(candidate), *(k for k in range(len(candidate) - 1, 4, -1) if candidate[k] == " ")]
        for end in ends:
            if iban_valid(candidate[:end]):
                found.append(Match("IBAN", start, start + end))
                break
        else:
            shields.append((start, m.end()))
    return found, shields


def _card_windows(runs: list[tuple[int, int]], i: int) -> list[int]:
    """Last-run indexes j such that runs[i..j] is laid out like a card number, longest first."""
    first = runs[i][1] - runs[i][0]
    if _CARD_MIN_DIGITS <= first <= _CARD_MAX_DIGITS:
        return [i]
    if first != 4:
        return []
    windows: list[int] = []
    total, j = first, i
    while j + 1 < len(runs):
        size = runs[j + 1][1] - runs[j + 1][0]
        if size > 6 or total + size > _CARD_MAX_DIGITS:
            break
        total, j = total + size, j + 1
        if total >= _CARD_MIN_DIGITS:
            windows.append(j)
        if size < 4:  # a short group can only be the last one
            break
    return windows[::-1]


def _card_layout(sizes: list[int]) -> bool:
    """True for the layouts cards are printed in, which no phone number uses."""
    if sizes in ([4, 6, 4], [4, 6, 5]):
        return True
    return sizes[:4] == [4, 4, 4, 4] and (len(sizes) == 4 or (len(sizes) == 5 and sizes[4] <= 3))


def _find_cards(text: str, claimed: _Spans) -> tuple[list[Match], list[tuple[int, int]]]:
    """Luhn-valid cards, plus card-laid-out numbers that failed (shielded from the phone rule)."""
    found: list[Match] = []
    shields: list[tuple[int, int]] = []
    for chain in _CARD_CHAIN.finditer(text):
        if chain.end() - chain.start() < _CARD_MIN_DIGITS:
            continue
        runs = _runs(text, chain.start(), chain.end())
        i = 0
        while i < len(runs):
            windows = _card_windows(runs, i)
            start = runs[i][0]
            hit = next(
                (
                    j
                    for j in windows
                    if not claimed.overlaps(start, runs[j][1]) and luhn_valid(text[start : runs[j][1]])
                ),
                None,
            )
            if hit is not None:
                found.append(Match("CARD", start, runs[hit][1]))
                i = hit + 1
                continue
            for j in windows:
                if _card_layout([end - begin for begin, end in runs[i : j + 1]]):
                    shields.append((start, runs[j][1]))
                    break
            i += 1
    return found, shields


def _is_phone(candidate: str, digits: int) -> bool:
    if not _PHONE_MIN_DIGITS <= digits <= _PHONE_MAX_DIGITS:
        return False
    if candidate.count("(") != candidate.count(")") or _DATE.search(candidate):
        return False
    if candidate[0] == "+":
        return True
    body = candidate[1:] if candidate[0] == "(" else candidate
    if body[0] == "0" and body[1].isdigit():  # national trunk prefix, or 00 + country code
        return True
    return _NANP.fullmatch(candidate) is not None


def _find_phones(text: str, blocked: _Spans) -> list[Match]:
    """Leftmost-longest phone numbers among the digit groups of each phone-like chain."""
    found: list[Match] = []
    for chain in _PHONE_CHAIN.finditer(text):
        if chain.end() - chain.start() < _PHONE_MIN_DIGITS:
            continue
        runs = _runs(text, chain.start(), chain.end())
        seen = [0]  # seen[k] = digits in runs[:k]
        for begin, end in runs:
            seen.append(seen[-1] + end - begin)
        i = 0
        while i < len(runs):
            begin = runs[i][0]
            lead = begin > chain.start() and text[begin - 1] in "+("
            start = begin - 1 if lead else begin
            if lead or (text[begin] == "0" and runs[i][1] - begin > 1):
                # Only windows of at most 15 digits can be phones: the longest ends at `last`.
                last = bisect.bisect_right(seen, seen[i] + _PHONE_MAX_DIGITS) - 2
                ends: Iterable[int] = range(last, i - 1, -1)
            elif runs[i][1] - begin == 3 and i + 2 < len(runs):
                ends = (i + 2,)  # the US 3-3-4 layout has exactly three groups
            else:
                ends = ()
            hit = next(
                (
                    j
                    for j in ends
                    if _is_phone(text[start : runs[j][1]], seen[j + 1] - seen[i])
                    and not blocked.overlaps(start, runs[j][1])
                ),
                None,
            )
            if hit is None:
                i += 1
                continue
            found.append(Match("PHONE", start, runs[hit][1]))
            i = hit + 1
    return found


def _find_emails(text: str) -> list[Match]:
    """E-mail addresses, looked for only around each "@" rather than at every word."""
    found: list[Match] = []
    at = text.find("@")
    while at != -1:
        local = _LOCAL_PART.search(text, max(0, at - _LOCAL_MAX), at)
        m = _EMAIL.match(text, local.start()) if local else None
        if m:
            found.append(Match("EMAIL", m.start(), m.end()))
            at = text.find("@", m.end())
        else:
            at = text.find("@", at + 1)
    return found


def find_pii(text: str) -> list[Match]:
    """Every piece of PII in ``text``, sorted by position and never overlapping.

    Exposed separately from :func:`redact` so callers can count or audit what was found
    without keeping the raw values.
    """
    emails = _find_emails(text)
    if not _ANY_DIGIT.search(text):
        return emails
    ibans, iban_shields = _find_ibans(text, _Spans((m.start, m.end) for m in emails))
    claimed = [(m.start, m.end) for m in (*emails, *ibans)]
    cards, card_shields = _find_cards(text, _Spans(claimed))
    claimed += [(m.start, m.end) for m in cards]
    phones = _find_phones(text, _Spans([*claimed, *iban_shields, *card_shields]))
    return sorted([*emails, *ibans, *cards, *phones], key=lambda m: m.start)


def redact(text: str) -> str:
    """``text`` with every piece of PII replaced by ``<EMAIL>``, ``<IBAN>``, ``<CARD>`` or ``<PHONE>``.

    Runs until nothing more is found, so ``redact(redact(x)) == redact(x)`` holds by
    construction: a replacement can change the neighbourhood of a number that was shielded
    before. It terminates because every match holds a digit or an ``@`` and no placeholder does.
    """
    matches = find_pii(text)
    while matches:
        parts: list[str] = []
        pos = 0
        for m in matches:
            parts += (text[pos : m.start], f"<{m.kind}>")
            pos = m.end
        parts.append(text[pos:])
        text = "".join(parts)
        matches = find_pii(text)
    return text
