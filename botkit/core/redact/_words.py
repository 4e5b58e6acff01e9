"""The rules anchored on words and symbols: e-mail, card security codes and expiry, dates of
birth, street addresses and introduced names.

Each rule is narrow on purpose: it needs an ``@``, a keyword or a street-type word that makes
the match near-certain, because a rule that redacts order numbers or product names would make
the stored text useless for monitoring and retraining. See the package docstring for what is
left out and why.
"""

from __future__ import annotations

import re
from typing import Final

from botkit.core.redact._base import Match, Spans

__all__ = ["find_addresses", "find_card_extras", "find_dobs", "find_emails", "find_names"]

_EMAIL: Final = re.compile(
    r"(?<![\w.%+'-])"  # the whole local part, never the tail of a longer word
    r"[\w.%+'-]++@"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"  # domain labels, subdomains included
    r"[^\W\d_]{2,63}"  # top-level domain: letters only
    r"(?![\w-])"
)
# "jane @ example . com": the same with single spaces around "@" and the dots.
_EMAIL_SPACED: Final = re.compile(
    r"[\w.%+'-]++ ?@ ?(?:[^\W_](?:[\w-]{0,61}[^\W_])? ?\. ?)+[^\W\d_]{2,63}(?![\w-])"
)
# The local part just before an "@" (RFC 5321 caps it at 64 characters). Matching starts
# there instead of scanning every word of the message for an e-mail address.
_LOCAL_PART: Final = re.compile(r"[\w.%+'-]{1,64}\Z")
_LOCAL_MAX: Final = 64
# Spelled-out addresses: "jane (at) example (dot) com", "jane [at] example.com",
# "jane at example dot com" (the bare-word form only with a spelled "dot", so "look at amazon.com"
# stays).
_AT_WORD: Final = re.compile(r"[\[(]\s?at\s?[\])]|\s(?:at|AT)\s", re.IGNORECASE)
_EMAIL_SPELLED: Final = re.compile(
    r"[\w.%+-]{1,64}(?:\s?[\[(]\s?at\s?[\])]\s?"
    r"(?:[^\W_][\w-]{0,62}(?:\s?[\[(]\s?dot\s?[\])]\s?|\s(?:dot|DOT)\s|\.))+"
    r"|\s(?:at|AT)\s(?:[^\W_][\w-]{0,62}\s(?:dot|DOT)\s)+"
    r"|\s(?:at|AT)\s(?=(?:gmail|googlemail|yahoo|outlook|hotmail|gmx|web|icloud|t-online|aol|proton(?:mail)?|"
    r"live|posteo|freenet|mailbox|yandex|zoho)\.)[\w-]+\.(?:co\.)?)"
    r"[^\W\d_]{2,6}(?![\w-])",
    re.IGNORECASE,
)

_SEP = r"[\s:=#.,-]{0,3}(?:(?:is|ist|lautet|was|war|on|am)\s)?[\s:]{0,2}"
_CVC: Final = re.compile(
    r"(?i:\b(?:cvc2?|cvv2?|cv2|csc|cid|security\s?code|card\s?code|sicherheitscode|prüfziffer|"
    r"kartenprüfnummer|prüfnummer)(?:-?code|-?nummer)?)" + _SEP + r"([0-9]{3,4})(?![0-9])"
)
_MMYY = r"(?:0?[1-9]|1[0-2])\s?[/.-]\s?(?:20[0-9]{2}|[0-9]{2})(?![0-9])"
_EXPIRY: Final = re.compile(
    r"(?i:\b(?:exp(?:iry|iration|ires|\.)?|valid\s(?:thru|through|until|till)|good\sthru|"
    r"gültig\sbis|ablauf(?:datum)?|läuft\sab|verfällt))(?i:\s?date)?" + _SEP + r"(" + _MMYY + r")"
)
# What may follow a card on the same line: expiry and code, with or without their keywords.
_AFTER_CARD: Final = re.compile(
    r"[\s,;|/]{0,3}(?i:(?:exp\w*|valid\s\w+|gültig\sbis|cvc2?|cvv2?|csc|code)[\s.:=]{0,3})?"
    r"(" + _MMYY + r"|[0-9]{3,4}(?![0-9/.]))"
)

_MONTHS = (
    r"(?:jan(?:uary|uar)?|feb(?:ruary|ruar)?|mar(?:ch)?|märz|apr(?:il)?|ma[iy]|june?|juni|july?|juli|"
    r"aug(?:ust)?|sep(?:t|tember)?|o[ck]t(?:ober)?|nov(?:ember)?|de[cz](?:ember)?)\.?"
)
_DATE_WORDS = (
    r"(?:[0-9]{1,2}[./-][0-9]{1,2}[./-](?:19|20)?[0-9]{2}(?![0-9])"
    r"|(?:19|20)[0-9]{2}-[0-9]{1,2}-[0-9]{1,2}(?![0-9])"
    r"|[0-9]{1,2}(?:st|nd|rd|th|\.)?\s?(?:of\s)?" + _MONTHS + r",?\s(?:19|20)[0-9]{2}(?![0-9])"
    r"|" + _MONTHS + r"\s[0-9]{1,2}(?:st|nd|rd|th)?,?\s(?:19|20)[0-9]{2}(?![0-9]))"
)
_DOB: Final = re.compile(
    r"(?i:\b(?:date\sof\sbirth|d\.?o\.?b\.?|birth\s?date|birth\s?day|born(?:\son)?|geburtsdatum|"
    r"geburtstag|geb\.|geboren(?:\sam)?|née?\sle|date\sde\snaissance))"
    r"(?i:[\s:=,-]{0,3}(?:is|was|ist|war|am|on|the|der|den|le|:)?\s?){0,3}"
    r"(" + _DATE_WORDS + r")",
    re.IGNORECASE,
)

_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
_CAP = rf"[{_UPPER}][{_LOWER}]+"
_DE_STREET = (
    r"(?:(?:" + _CAP + r"(?:er|sche|ische)?\s)?" + _CAP + r"-?"
    r"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|pfad|steig|stieg|hof|"
    r"Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee)"
    r"|" + _CAP + r"(?:er|sche)?\s"
    r"(?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee|Steig|Pfad|Hof|Markt))"
    r"\s?[0-9]{1,4}(?:\s?[a-zA-Z])?(?![\w])"
)
_EN_STREET = (
    r"[0-9]{1,5}[A-Za-z]?,?\s(?:" + _CAP + r"\s){1,3}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|"
    r"Terrace|Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy|Row|Gardens|Mews)\b\.?"
    r"(?:\s(?:N|S|E|W|NE|NW|SE|SW)\b)?"
)
_POSTCODE_CITY = (
    r"(?:,?\s(?:(?:D-|A-|CH-)?[0-9]{4,5}\s" + _CAP + r"(?:\s(?:am|an\sder|" + _CAP + r")\s?" + _CAP + r")?"
    r"|" + _CAP + r"(?:\s" + _CAP + r")?(?:,?\s(?:[A-Z]{2}\s[0-9]{5}(?:-[0-9]{4})?"
    r"|[A-Z]{1,2}[0-9][A-Z0-9]?\s?[0-9][A-Z]{2}))?))?"
)
_ADDRESS: Final = re.compile(r"(?<![\w-])(?:" + _DE_STREET + r"|" + _EN_STREET + r")" + _POSTCODE_CITY)
# Cheap gates: a German street word, or a house number followed by a capitalised word.
_DE_STREET_HINTS: Final = ("str", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer", "chaussee", "pfad",
                           "steig", "stieg", "hof", "markt")
_EN_NUMBER_WORD: Final = re.compile(rf"[0-9][A-Za-z]?,?\s[{_UPPER}][{_LOWER}]")

_NAME_WORD = rf"[{_UPPER}](?:['’][{_UPPER}])?[{_LOWER}'’]+(?:-[{_UPPER}][{_LOWER}'’]+)?"
_NAME: Final = re.compile(
    r"(?i:\b(?:my\sname\sis|my\sname's|my\sfull\sname\sis|full\sname:|mein\sname\sist|ich\sheiße|ich\sheisse|"
    r"(?:kind|best|warm)\sregards,?|regards,|cheers,|sincerely,|viele\sgrüße,?|liebe\sgrüße,?|"
    r"mit\sfreundlichen\sgrüßen,?|mfg,?|lg,))\s?"
    r"(" + _NAME_WORD + r"(?:\s(?:van|von|de|der|la|le|di)?\s?" + _NAME_WORD + r"){0,2})"
)
# Capitalised words people put after "I am" that are not names ("I am Not Sure", "I'm Very Happy").
_NOT_NAMES: Final = frozenset({
    "not", "very", "so", "really", "just", "still", "also", "here", "back", "sure", "happy", "sorry", "looking",
    "interested", "trying", "going", "writing", "calling", "waiting", "unable", "able", "new", "the", "a", "an", "in",
    "on", "at", "from", "with", "your", "customer", "client", "member", "user", "nicht", "sehr", "noch", "auch",
    "hier", "gerade", "kunde", "kundin", "neu", "interessiert"})
# "I am Jane Doe", "ich bin Max Mustermann": only with first *and* last name capitalised, so "I am Happy"
# or "I'm Jane" (too often a word) stay; "this is ..." introduces shops and products as often as people.
_NAME_SELF: Final = re.compile(
    r"(?i:\b(?:i\sam|i'm|i’m|ich\sbin))\s"
    r"(" + _NAME_WORD + r"(?:\s(?:van|von|de|der|la|le|di))?\s" + _NAME_WORD + r")(?![\w'’-])"
)


def find_emails(text: str) -> list[Match]:
    """E-mail addresses, looked for only around each "@", then spelled-out ones around "at"."""
    found: list[Match] = []
    at = text.find("@")
    while at != -1:
        end = at - (at > 0 and text[at - 1] == " ")
        local = _LOCAL_PART.search(text, max(0, end - _LOCAL_MAX), end)
        m = (_EMAIL.match(text, local.start()) or _EMAIL_SPACED.match(text, local.start())) if local else None
        if m:
            found.append(Match("EMAIL", m.start(), m.end()))
            at = text.find("@", m.end())
        else:
            at = text.find("@", at + 1)
    low = text.lower()
    spelled = " at " in low or "(at" in low or "[at" in low
    for word in _AT_WORD.finditer(text) if spelled else ():
        end = word.start() - (word.start() > 0 and text[word.start() - 1] == " ")
        local = _LOCAL_PART.search(text, max(0, end - _LOCAL_MAX), end)
        m = _EMAIL_SPELLED.match(text, local.start()) if local else None
        if m and not (found and found[-1].end > m.start()):
            found.append(Match("EMAIL", m.start(), m.end()))
    return sorted(found, key=lambda m: m.start)


# Cheap substring gates: a keyword rule runs only when one of its keywords occurs at all, which
# keeps a 2,000-character message well under a millisecond.
_CVC_HINTS: Final = ("cvc", "cvv", "cv2", "csc", "cid", "code", "prüf")
_EXPIRY_HINTS: Final = ("exp", "valid", "thru", "gültig", "ablauf", "läuft", "verfällt")
_DOB_HINTS: Final = ("birth", "dob", "d.o.b", "born", "geb", "naissance", "née", "ne le")


def _hinted(low: str, hints: tuple[str, ...]) -> bool:
    return any(h in low for h in hints)


def _group(kind: str, pattern: re.Pattern[str], text: str, claimed: Spans) -> list[Match]:
    found: list[Match] = []
    for m in pattern.finditer(text):
        start, end = m.span(1)
        if not claimed.overlaps(start, end):
            found.append(Match(kind, start, end))
    return found


def find_card_extras(text: str, cards: list[Match], claimed: Spans) -> list[Match]:
    """Security codes and expiry dates: after a keyword anywhere, and bare right after a card."""
    low = text.lower()
    found = _group("CVC", _CVC, text, claimed) if _hinted(low, _CVC_HINTS) else []
    if _hinted(low, _EXPIRY_HINTS):
        found += _group("EXPIRY", _EXPIRY, text, claimed)
    taken = Spans([*((m.start, m.end) for m in found)])
    for card in cards:
        pos = card.end
        for _ in range(2):  # "4111 ... 12/27 737": at most an expiry and a code
            m = _AFTER_CARD.match(text, pos)
            if m is None:
                break
            start, end = m.span(1)
            if not (claimed.overlaps(start, end) or taken.overlaps(start, end)):
                kind = "CVC" if m.group(1).isdigit() else "EXPIRY"
                found.append(Match(kind, start, end))
            pos = m.end()
    return found


def find_dobs(text: str, claimed: Spans) -> list[Match]:
    """Dates introduced as a birth date ("DOB 12.03.1985", "geboren am 3. März 1985")."""
    return _group("DOB", _DOB, text, claimed) if _hinted(text.lower(), _DOB_HINTS) else []


def find_addresses(text: str, claimed: Spans) -> list[Match]:
    """Street and house number (German or English form), with the postcode and city that follow."""
    low = text.lower()
    if not (_hinted(low, _DE_STREET_HINTS) or _EN_NUMBER_WORD.search(text)):
        return []
    return [Match("ADDRESS", m.start(), m.end()) for m in _ADDRESS.finditer(text)
            if not claimed.overlaps(m.start(), m.end())]


def find_names(text: str, claimed: Spans) -> list[Match]:
    """Names the writer introduces ("my name is Jane Doe", "Kind regards, Jane")."""
    found = _group("NAME", _NAME, text, claimed)
    taken = Spans([*((m.start, m.end) for m in found)])
    return found + [m for m in _group("NAME", _NAME_SELF, text, taken)
                    if not _NOT_NAMES.intersection(text[m.start:m.end].lower().split())]
