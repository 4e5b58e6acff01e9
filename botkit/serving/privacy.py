"""Session ids: checked like any other input, stored only as a keyed pseudonym.

Clients choose their own ``session_id``, and they choose what is at hand: an e-mail address, a
customer number, a name. Stored verbatim it would put exactly that into the event store. The
service therefore keeps only ``HMAC-SHA256(id key, session_id)`` (the key in its own file, see
``botkit.core.keys``): the turns of one session still group together (same id, same pseudonym,
on every worker and replica that share the key), but nobody holding the store can read the id
back or test a guess without the key.

What a session id may contain: printable characters only (no control characters, no NUL, no
bidi overrides or zero-width characters, no line breaks), no leading or trailing space, at most
``SESSION_ID_MAX_CHARS`` characters.
"""

from __future__ import annotations

import re
from typing import Final

from botkit.core.keys import keyed_hash

__all__ = ["PSEUDONYM_PREFIX", "SESSION_ID_MAX_CHARS", "SESSION_ID_PATTERN", "check_session_id", "pseudonym"]

SESSION_ID_MAX_CHARS: Final = 128
# Not printable: controls (Cc), format (Cf: bidi overrides, zero-width, BOM), separators other than the ASCII
# space (Zs, Zl, Zp) and private use (Co), as explicit Basic Multilingual Plane ranges, so that the JSON Schema
# ``pattern`` published in /docs.json (SESSION_ID_PATTERN) and this check are one rule in every regex engine
# (an ECMAScript pattern cannot name astral characters; those, and unassigned ones, are allowed).
_NOT_PRINTABLE: Final = (r"\u0000-\u001F\u007F-\u00A0\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u1680"
                         r"\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u206F\u3000\uE000-\uF8FF\uFEFF"
                         r"\uFFF9-\uFFFB")
SESSION_ID_PATTERN: Final = f"^[^{_NOT_PRINTABLE} ]([^{_NOT_PRINTABLE}]*[^{_NOT_PRINTABLE} ])?$"
_NOT_PRINTABLE_RE: Final = re.compile(f"[{_NOT_PRINTABLE}]")
PSEUDONYM_PREFIX: Final = "s1:"  # versioned, so a key rotation can say which key made a pseudonym
_PSEUDONYM_HEX: Final = 32  # 128 bits of the HMAC: no collisions among any realistic number of sessions


def check_session_id(value: str | None) -> str | None:
    """``value`` unchanged when it is a valid session id (or None); else ``ValueError`` naming the rule.

    The error never repeats the value: it may be the very PII it carries.
    """
    if value is None:
        return None
    if not value or len(value) > SESSION_ID_MAX_CHARS:
        raise ValueError(f"session_id must have 1 to {SESSION_ID_MAX_CHARS} characters")
    if _NOT_PRINTABLE_RE.search(value):
        raise ValueError("session_id must hold printable characters only (no control, format or bidi characters)")
    if value.strip() != value:
        raise ValueError("session_id must not start or end with a space")
    return value


def pseudonym(session_id: str | None) -> str | None:
    """The keyed pseudonym stored in place of ``session_id`` (None stays None)."""
    if session_id is None:
        return None
    return PSEUDONYM_PREFIX + keyed_hash("id", session_id)[:_PSEUDONYM_HEX]
