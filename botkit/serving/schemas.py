"""The request and response models of the chat API: what ``/docs.json`` publishes and what is validated."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from botkit.core.config import settings
from botkit.serving.privacy import check_session_id

__all__ = ["MAX_BATCH_MESSAGES", "MAX_CHARS", "ChatBatchRequest", "ChatRequest", "ChatResponse", "FeedbackRequest",
           "FeedbackResponse"]

MAX_CHARS = settings.max_message_chars
MAX_BATCH_MESSAGES = 256


def _clean(text: str) -> str:
    """Reject what no user types: blank text and control characters (other than newline and tab)."""
    # Invisible format characters (zero-width space, joiners, BOM) alone are as empty as spaces.
    if not text.strip() or all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text):
        raise ValueError("message must not be empty or whitespace")
    # C0 controls, DEL and the C1 controls U+0080-U+009F (Unicode category Cc; U+009B is the 8-bit CSI).
    if any((ord(ch) < 32 and ch not in "\n\t\r") or 0x7F <= ord(ch) <= 0x9F for ch in text):
        raise ValueError("message contains control characters")
    return text


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: Annotated[str, Field(min_length=1, max_length=MAX_CHARS, description="What the user typed.")]
    session_id: Annotated[str | None, Field(max_length=128, description="Groups the turns of one user.")] = None

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
    messages: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_CHARS)]],
                        Field(min_length=1, max_length=MAX_BATCH_MESSAGES)]
    session_id: Annotated[str | None, Field(max_length=128)] = None

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
