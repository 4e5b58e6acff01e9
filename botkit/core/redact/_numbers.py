"""The number rules: IBANs (mod-97), payment cards (Luhn) and phone numbers (layout).

They run on the skeleton (see ``_normalise``), in this order, and a later rule never claims
characters an earlier one took:

1. ``<IBAN>``: country code, two check digits and the account part, written compact or in
   groups separated by spaces or dashes (``DE89 3704 ...``, ``DE89-3704-...``, ``DE 89 ...``);
   the length comes from the country's IBAN length where known; redacted only when the
   ISO 7064 mod-97 check passes. An IBAN-shaped token that fails is left alone and rule 3 does
   not look inside it.
2. ``<CARD>``: 13-19 digits, contiguous or grouped by single spaces, dashes or dots; redacted
   only when the Luhn check passes. Printed card layouts (4-4-4-4, 4-6-5, ...) are accepted
   from any digit; any other grouping only when it starts like a card (2-6: Visa, Mastercard,
   Amex, Discover, JCB, UnionPay, Maestro) and is not led by ``+`` or ``(`` like a phone. A
   failing number in a card layout is shielded from rule 3.
3. ``<PHONE>``: 7-15 digits (E.164 allows at most 15) that start like a phone number: ``+``
   and a country code, ``00``, a national trunk ``0`` (``030 12345678``, ``07700 900123``),
   an area code in parentheses, or the US 3-3-4 layout (``555-123-4567``). Groups may be
   separated by one space, dot, dash or slash (spaces around a dash or slash allowed).
   Numbers with none of these starts (order numbers, sizes, years, prices) and dates such as
   ``05.11.2026`` are not phones.

Cards and IBANs are validated because a checksum makes them certain; phones have no
checksum, so the phone rule leans on layout and errs towards redacting a number that merely
looks like a phone. Every pattern is precompiled and built from possessive or bounded
quantifiers, so matching time is linear in the input.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Final

from botkit.core.redact._base import Match
from botkit.core.redact._base import Spans as _Spans

__all__ = ["find_cards", "find_ibans", "find_phones", "iban_valid", "luhn_valid"]


# Matches start at the two check digits, after checking the country code behind them (glued or
# one space/dash away): a pattern that starts with a digit is skipped over ordinary words much
# faster. Letters are accepted in either case because people type IBANs in lower case too.
_IBAN: Final = re.compile(
    r"[0-9]{2}(?:(?<=[A-Za-z]{2}[0-9]{2})(?<![A-Za-z0-9][A-Za-z]{2}[0-9]{2})"
    r"|(?<=[A-Z]{2}[ \-][0-9]{2})(?<![A-Za-z0-9][A-Z]{2}[ \-][0-9]{2}))"  # "DE 89 ...": capitals only
    r"(?:[ \-]?[A-Za-z0-9]){10,30}"
)
_IBAN_COMPACT: Final = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_NO_DIGITS: Final = str.maketrans("", "", "0123456789")
_IBAN_SEPARATORS: Final = str.maketrans("", "", " -")
# ISO 13616 lengths (SWIFT IBAN registry) of the countries botkit's users are likely to paste.
_IBAN_LENGTH: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}
_IBAN_MIN_BBAN_DIGITS: Final = 8

# Maximal runs of digits joined by a space, or a dash, dot or slash (spaces around it allowed): where card
# numbers live.
# A match always starts a digit run: scanning resumes after a chain, where no digit follows.
_CARD_CHAIN: Final = re.compile(r"[0-9]++(?:(?:[ ]?[\-./_][ ]?|[ ])[0-9]++)*+")
_CARD_STARTS: Final = "23456"  # first digit of every card brand's IIN range
# Odd groupings are tried only in chains of at most this many digit groups (a card typed one digit at a
# time has 19): a hostile wall of single digits would otherwise cost seconds. Printed layouts are always tried.
_LOOSE_MAX_RUNS: Final = 40
_CARD_MIN_DIGITS: Final = 13
_CARD_MAX_DIGITS: Final = 19

# Digit groups a phone number may be written in: one space, dot, dash or slash (with spaces) between
# groups, or parentheses around an area code or a "(0)" trunk. Never glued to a word, an order
# "#", a currency sign or the decimals of another number.
_PHONE_CHAIN: Final = re.compile(
    r"(?:\(\+(?=[0-9])(?<![\w#+@€$£¥]\(\+)"  # "(+49) ...", or
    r"|[+(0-9](?<![\w#+@€$£¥][+(0-9])(?<![0-9][.,][+(0-9]))"  # first character, then what precedes it
    r"[0-9]*+(?<![+(])"  # at least one digit, also after a "+" or "("
    r"(?:(?:[ ]?[.\-/][ ]?|[ ]|\)[ .\-]?|[ .\-]?\()[0-9]++)*+"
)
_PHONE_MIN_DIGITS: Final = 7
_PHONE_MAX_DIGITS: Final = 15
_NANP: Final = re.compile(r"(?:\([0-9]{3}\)[ ]?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}")
_DATE: Final = re.compile(
    r"(?<![0-9.\-/])"
    r"(?:[0-9]{1,2}([./\-])[0-9]{1,2}\1(?:[0-9]{4}|[0-9]{2})|[0-9]{4}([./\-])[0-9]{1,2}\2[0-9]{1,2})"
    r"(?![0-9]|[./\-][0-9])"
)

# A number right after an identifier word is that identifier, not a phone: "order 0301234567",
# "Bestellnummer: 0171234567", "case no. 00123456". Only with nothing but a number word, "#" or ":" between,
# so "my order, call 0171 1234567" still finds the phone.
_ID_BEFORE: Final = re.compile(
    r"(?i:\b(?:order|bestell\w*|auftrag\w*|invoice|rechnung\w*|ticket|case|vorgang\w*|ref|referenz\w*|reference|"
    r"tracking|sendung\w*|paket\w*|parcel|shipment|customer|kunden\w*|artikel\w*|article|item|sku|ean|isbn|imei|"
    r"serial|serien\w*|account|konto\w*|vertrag\w*|contract|voucher|gutschein\w*|coupon)"
    r"(?:\s?(?:number|nummer|no\.?|nr\.?|id|code))?\s?[:#]?\s?)\Z"
)
# "1Z 999 AA1 01 2345 6784": digits right after a token that mixes letters and digits belong to that code.
_CODE_BEFORE: Final = re.compile(r"(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]+ \Z")
_ANY_DIGIT: Final = re.compile(r"[0-9]")
_DIGIT_RUN: Final = re.compile(r"[0-9]+")
_CARD_SEPARATORS: Final = str.maketrans("", "", " -./_")
_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # Luhn: 2*d, minus 9 when that exceeds 9


def luhn_valid(digits: str) -> bool:
    """True when the Luhn checksum of a card number passes; spaces, dashes, dots and slashes are ignored.

    Every payment card number ends in a Luhn check digit, so a number that fails is not a card
    and is not redacted as one.
    """
    compact = digits.translate(_CARD_SEPARATORS)
    if not (compact.isascii() and compact.isdigit()):
        return False
    reverse = compact[::-1]
    total = sum(map(int, reverse[0::2])) + sum(_DOUBLED[int(ch)] for ch in reverse[1::2])
    return total % 10 == 0


def iban_valid(s: str) -> bool:
    """True when ``s`` (spaces, dashes and letter case ignored) passes the ISO 13616 / ISO 7064 mod-97 check.

    The check catches every single-character typo, so a token that fails is not an IBAN.
    Check digits outside 02-98 are rejected as the standard requires.
    """
    compact = s.translate(_IBAN_SEPARATORS).upper()
    if not _IBAN_COMPACT.fullmatch(compact) or not 2 <= int(compact[2:4]) <= 98:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _runs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _DIGIT_RUN.finditer(text, start, end)]


def _iban_ends(candidate: str) -> list[int]:
    """Where the IBAN in ``candidate`` (country code first) may end, most likely first.

    With a known country the end is where its length is reached; otherwise each position
    before a separator, longest first (the pattern cannot tell "... 7034 THEN" from more IBAN).
    """
    wanted = _IBAN_LENGTH.get(candidate[:2].upper())
    if wanted is not None:
        seen = 0
        for k, ch in enumerate(candidate):
            seen += ch.isalnum()
            if seen == wanted:
                return [k + 1]
        return []
    return [len(candidate), *(k for k in range(len(candidate) - 1, 4, -1) if candidate[k] in " -")]


def find_ibans(text: str, claimed: _Spans) -> tuple[list[Match], list[tuple[int, int]]]:
    """IBANs, plus the IBAN-shaped tokens that failed the check (shielded from the phone rule)."""
    found: list[Match] = []
    shields: list[tuple[int, int]] = []
    for m in _IBAN.finditer(text):
        start = m.start() - (3 if text[m.start() - 1] in " -" else 2)  # the country code in front
        candidate = text[start : m.end()].rstrip(" -")
        end_max = start + len(candidate)
        if claimed.overlaps(start, end_max):
            continue
        bban = candidate[4:]
        if len(bban) - len(bban.translate(_NO_DIGITS)) < _IBAN_MIN_BBAN_DIGITS:
            continue
        for end in _iban_ends(candidate):
            if iban_valid(candidate[:end]):
                found.append(Match("IBAN", start, start + end))
                break
        else:
            shields.append((start, end_max))
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


def _loose_windows(text: str, runs: list[tuple[int, int]], i: int) -> list[int]:
    """Last-run indexes j such that runs[i..j] holds 13-19 digits and starts like a card, longest first.

    Catches cards typed in odd groups (``4111 11 1111 111 111``, one digit at a time) that are
    in no printed layout; a ``+`` or ``(`` in front, or a leading ``0``/``1``, marks a phone. Only in
    chains of at most ``_LOOSE_MAX_RUNS`` groups, so a wall of single digits stays linear and cheap.
    """
    begin = runs[i][0]
    if len(runs) > _LOOSE_MAX_RUNS or text[begin] not in _CARD_STARTS or (begin > 0 and text[begin - 1] in "+("):
        return []
    windows: list[int] = []
    total = 0
    for j in range(i, len(runs)):
        total += runs[j][1] - runs[j][0]
        if total > _CARD_MAX_DIGITS:
            break
        if total >= _CARD_MIN_DIGITS:
            windows.append(j)
    return windows[::-1]


def find_cards(text: str, claimed: _Spans) -> tuple[list[Match], list[tuple[int, int]]]:
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
            loose = [j for j in _loose_windows(text, runs, i) if j not in windows]
            start = runs[i][0]
            hit = next(
                (
                    j
                    for j in (*windows, *loose)
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
    if candidate[0] == "+" or candidate.startswith("(+"):
        return True
    body = candidate[1:] if candidate[0] == "(" else candidate
    if body[0] == "0" and body[1].isdigit():  # national trunk prefix, or 00 + country code
        return True
    return _NANP.fullmatch(candidate) is not None


def find_phones(text: str, blocked: _Spans) -> list[Match]:
    """Leftmost-longest phone numbers among the digit groups of each phone-like chain.

    Complete dates are shielded: "12/03/2026 10/11/2026" holds no phone number.
    """
    found: list[Match] = []

    def in_date(start: int, end: int) -> bool:  # a date is at most 10 characters: look just around the span
        return any(m.start() < end and start < m.end()
                   for m in _DATE.finditer(text, max(0, start - 10), min(len(text), end + 10)))
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
            start = begin - 2 if lead and text[max(0, begin - 2):begin] == "(+" else begin - 1 if lead else begin
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
                    and not in_date(start, runs[j][1])
                    and not _ID_BEFORE.search(text, max(0, start - 40), start)
                    and not _CODE_BEFORE.search(text, max(0, start - 24), start)
                ),
                None,
            )
            if hit is None:
                i += 1
                continue
            found.append(Match("PHONE", start, runs[hit][1]))
            i = hit + 1
    return found
