"""The skeleton the rules match on: what a reader sees, with every disguise taken off.

People paste PII from banking apps (no-break spaces), mobile keyboards (full-width digits) and
web pages (zero-width spaces, soft hyphens), and an attacker adds invisible characters on
purpose. The rules match on a *skeleton* of the text and report positions in the original,
so a match covers the invisible characters inside it and the rest of the text is kept as sent:

- format characters (Unicode ``Cf``: zero-width space/joiners, BOM, soft hyphen, bidi
  controls), combining marks (``Mn``/``Me``: variation selectors, the grapheme joiner, accents
  typed as separate marks) and control characters are dropped;
- every kind of white space (no-break, narrow, ideographic, line and paragraph separators, tab,
  newline) becomes one space, and a run of them one space;
- every dash (hyphen, non-breaking hyphen, en/em dash, minus sign) becomes ``-``;
- decimal digits of any script become ASCII digits; everything else goes through NFKC, which
  turns full-width letters, digits and ``＠`` into their ASCII forms.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = ["skeleton"]

_DROP = frozenset({"Cf", "Mn", "Me", "Cc", "Cs", "Co", "Cn"})
_SPACE = frozenset({"Zs", "Zl", "Zp"})


@lru_cache(maxsize=4096)
def _char(ch: str) -> str:
    """The skeleton of one character: ``""`` (dropped), ``" "``, or its folded form."""
    if ch in "\t\n\r\v\f":
        return " "
    cat = unicodedata.category(ch)
    if cat in _SPACE:
        return " "
    if cat in _DROP:
        return ""
    if cat == "Pd" or ch == "\u2212":
        return "-"
    if ch in "\u3002\uff61":  # ideographic full stops: what a CJK keyboard types for "."
        return "."
    if cat == "Nd":
        return str(unicodedata.decimal(ch))
    folded = unicodedata.normalize("NFKC", ch)
    return "".join(c for c in folded if unicodedata.category(c) not in _DROP)


def skeleton(text: str) -> tuple[str, list[int] | None]:
    """``(skeleton, origin)``: ``origin[j]`` is the index in ``text`` of skeleton character ``j``.

    ``origin`` is ``None`` when the skeleton is the text itself (plain ASCII with single spaces,
    the common case, costs one scan).
    """
    if text.isascii() and "  " not in text and not any(c in text for c in "\t\n\r\v\f") \
            and text.isprintable():
        return text, None
    out: list[str] = []
    origin: list[int] = []
    space = False
    for i, ch in enumerate(text):
        folded = _char(ch)
        if not folded:
            continue
        if folded == " ":
            if space:
                continue
            space = True
        else:
            space = False
        out.append(folded)
        origin.extend([i] * len(folded))
    return "".join(out), origin
