"""The request and response models of the chat API: what ``/docs.json`` publishes and what is validated."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from botkit.core.config import settings
from botkit.serving.privacy import SESSION_ID_PATTERN, check_session_id

__all__ = ["MAX_BATCH_MESSAGES", "MAX_CHARS", "MESSAGE_PATTERN", "ChatBatchRequest", "ChatRequest", "ChatResponse",
           "FeedbackRequest", "FeedbackResponse"]

MAX_CHARS = settings.max_message_chars
MAX_BATCH_MESSAGES = 256


# What no user types, as character classes every regex engine reads alike (explicit \uXXXX ranges, no
# shorthand like \s whose meaning differs between Python, Rust and ECMAScript). Unicode 14 (Python 3.11).
# Controls: C0 except tab, newline and carriage return; DEL; C1 (U+0080-U+009F, U+009B is the 8-bit CSI).
CONTROL_CLASS = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F"
# Invisible: what str.isspace() calls whitespace, and the format characters (category Cf: zero-width
# space and joiners, bidi marks, BOM, soft hyphen, ...). A message made only of these is empty.
# Only the Basic Multilingual Plane: an ECMAScript pattern without the ``u`` flag reads an astral character as
# two UTF-16 halves (a range of them is not even valid), so the few astral format characters (U+E0001,
# tags U+E0020-E007F, ...) count as visible here: a message of only those is answered, like any odd text.
INVISIBLE_CLASS = (r"\u0009-\u000D\u001C-\u0020\u0085\u00A0\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890\u0891"
                   r"\u08E2\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u206F\u3000\uFEFF"
                   r"\uFFF9-\uFFFB")
# The published rule (JSON Schema ``pattern`` of every message): no control character anywhere and at
# least one visible character. The validator below decides with the same two classes.
MESSAGE_PATTERN = f"^[^{CONTROL_CLASS}]*[^{CONTROL_CLASS}{INVISIBLE_CLASS}][^{CONTROL_CLASS}]*$"
_CONTROL = re.compile(f"[{CONTROL_CLASS}]")
_VISIBLE = re.compile(f"[^{CONTROL_CLASS}{INVISIBLE_CLASS}]")


def _clean(text: str) -> str:
    """Reject what no user types: control characters (other than newline, tab, CR) and blank text.

    Two linear scans rather than ``MESSAGE_PATTERN`` itself, which backtracks quadratically in
    Python's ``re`` on long refused messages; they accept exactly the strings the pattern matches.
    """
    if _CONTROL.search(text):
        raise ValueError("message contains control characters")
    if not _VISIBLE.search(text):
        raise ValueError("message must not be empty or whitespace")
    return text


_MESSAGE_SCHEMA = {"pattern": MESSAGE_PATTERN}
_SESSION_SCHEMA = {"pattern": SESSION_ID_PATTERN}  # printable, no space at either end (botkit.serving.privacy)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: Annotated[str, Field(min_length=1, max_length=MAX_CHARS, description="What the user typed.",
                                     json_schema_extra=_MESSAGE_SCHEMA)]
    session_id: Annotated[str | None, Field(min_length=1, max_length=128, description="Groups the turns of one user.",
                                            json_schema_extra=_SESSION_SCHEMA)] = None

    @field_validator("session_id")
    @classmethod
    def _check_session(cls, v: str | None) -> str | None:
        return check_session_id(v)  # printable only; stored as a keyed pseudonym (botkit.serving.privacy)

    @field_validator("message")
    @classmethod
    def _check(cls, v: str) -> str:
        return _clean(v)


class ChatBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_CHARS,
                                                  json_schema_extra=_MESSAGE_SCHEMA)]],
                        Field(min_length=1, max_length=MAX_BATCH_MESSAGES)]
    session_id: Annotated[str | None, Field(min_length=1, max_length=128, json_schema_extra=_SESSION_SCHEMA)] = None

    @field_validator("session_id")
    @classmethod
    def _check_session(cls, v: str | None) -> str | None:
        return check_session_id(v)

    @field_validator("messages")
    @classmethod
    def _check_all(cls, v: list[str]) -> list[str]:
        return [_clean(m) for m in v]


class ChatResponse(BaseModel):
    request_id: str
    intent: str = Field(description="Predicted intent; 'oos' when the bot fell back.")
    confidence: float = Field(ge=0, le=1)
    reply: str
    fallback: bool
    model_version: str
    latency_ms: float = Field(description="Time spent inside the service, in milliseconds.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    rating: Literal["up", "down"]
    correct_intent: Annotated[str | None, Field(max_length=100)] = None
    comment: Annotated[str | None, Field(max_length=MAX_CHARS)] = None


class FeedbackResponse(BaseModel):
    accepted: bool
    request_id: str
