"""Which user corrections retraining may learn from: the rule that keeps coordinated lies out.

Anyone can post ``/feedback``, and session ids are chosen by clients, so a single attacker can
look like many users. Counting agreement alone would let 30 scripted corrections teach the bot
that "where is my order" means "cancel my order". The rule:

A correction *(utterance, label)* is learned only when

1. a reviewer approved it (a row of the corrections review queue copied into an approvals file:
   ``retrain(approvals=...)``), **or**
2. all three hold:

   - at least ``k`` distinct sessions (``BOTKIT_CORRECTION_MIN_SESSIONS``, default 3; their keyed
     pseudonyms) sent this label for this utterance (after :func:`botkit.core.data.normalize`),
   - no session sent a different label for it,
   - the bot was unsure: its confidence on every corrected request was below ``min_confidence``
     (the review queue's threshold). A correction that contradicts an answer the bot was sure of
     is exactly what poisoning looks like, so it always needs a person.

Everything else waits in ``corrections_review.csv`` (utterance, label, sessions, requests, the
bot's answer and confidence, other labels, flags) for a reviewer. Each request counts once (the
first correction; the service also refuses a second one with 409). Text in the review files has
invisible characters (format/bidi controls, zero-width, control characters) removed and flagged,
so injected text cannot hide from the person reading it.
"""

from __future__ import annotations

import csv
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from botkit.core.data import normalize

if TYPE_CHECKING:
    from botkit.serving.events import ChatEvent, FeedbackEvent

__all__ = ["Ballot", "decide", "load_approvals", "visible", "write_review"]

_INVISIBLE = frozenset({"Cf", "Cc", "Co", "Cs", "Zl", "Zp"})


def visible(text: str) -> tuple[str, str]:
    """``text`` without invisible characters, and a flag saying how many were removed ("" when none)."""
    kept = [ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in _INVISIBLE]
    removed = len(text) - len(kept)
    return "".join(kept), (f"invisible:{removed}" if removed else "")


@dataclass
class Ballot:
    """Every correction of one normalised utterance to one label."""

    key: str
    label: str
    text: str
    sessions: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    predicted: str = ""
    max_confidence: float = 0.0
    other_labels: set[str] = field(default_factory=set)
    reason: str = ""


def decide(chats: dict[str, ChatEvent], corrections: dict[str, FeedbackEvent], *, known: set[str],
           min_sessions: int, min_confidence: float, approved: set[tuple[str, str]] = frozenset(),
           ) -> tuple[dict[str, FeedbackEvent], list[Ballot], list[Ballot]]:
    """``(learnable, accepted, held)``: one correction per accepted utterance, and the ballots.

    Corrections the data rules reject anyway (no chat event, empty text, unknown label) pass
    through unchanged, so retraining counts them under their own skip reasons.
    """
    passthrough: dict[str, FeedbackEvent] = {}
    ballots: dict[tuple[str, str], Ballot] = {}
    for rid, fb in corrections.items():
        chat = chats.get(rid)
        label = (fb.correct_intent or "").strip()
        if chat is None or not chat.text.strip() or label not in known:
            passthrough[rid] = fb
            continue
        key = normalize(visible(chat.text)[0])  # zero-width variants vote with the plain text
        b = ballots.setdefault((key, label), Ballot(key, label, chat.text, predicted=chat.intent))
        b.requests.append(rid)
        if chat.session_id:
            b.sessions.add(chat.session_id)
        b.max_confidence = max(b.max_confidence, chat.confidence)
    labels_by_key: dict[str, set[str]] = defaultdict(set)
    for key, label in ballots:
        labels_by_key[key].add(label)
    learnable = dict(passthrough)
    accepted: list[Ballot] = []
    held: list[Ballot] = []
    for (key, label), b in ballots.items():
        b.other_labels = labels_by_key[key] - {label}
        ok = False
        if (key, label) in approved:
            b.reason, ok = "approved by a reviewer", True
        elif b.other_labels:
            b.reason = "sessions disagree on the label"
        elif len(b.sessions) < min_sessions:
            b.reason = f"{len(b.sessions)} of {min_sessions} sessions"
        elif b.max_confidence >= min_confidence:
            b.reason = f"contradicts a confident answer ({b.max_confidence:.2f} >= {min_confidence})"
        else:
            b.reason, ok = f"{len(b.sessions)} sessions agree, the bot was unsure", True
        if ok:
            accepted.append(b)
            learnable[b.requests[0]] = corrections[b.requests[0]]
        else:
            held.append(b)
    return learnable, accepted, held


def _cell(text: str) -> str:
    """User text is opened in spreadsheets: a leading = + - @ would run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_review(path: Path, held: list[Ballot]) -> int:
    """The corrections review queue, most sessions first; returns its number of rows."""
    rows = sorted(held, key=lambda b: (-len(b.sessions), -len(b.requests), b.key, b.label))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "sessions", "requests", "predicted_intent", "max_confidence",
                    "other_labels", "why_held", "flags"])
        for b in rows:
            text, flags = visible(b.text)
            w.writerow([_cell(text), b.label, len(b.sessions), len(b.requests), b.predicted,
                        f"{b.max_confidence:.4f}", " ".join(sorted(b.other_labels)), b.reason, flags])
    return len(rows)


def load_approvals(path: str | Path | None) -> set[tuple[str, str]]:
    """Reviewer-approved ``(normalised text, label)`` pairs from a CSV with ``text`` and ``label`` columns
    (rows of ``corrections_review.csv`` a reviewer kept)."""
    if path is None:
        return set()
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return {(normalize(visible(r["text"].removeprefix("'"))[0]), r["label"].strip()) for r in csv.DictReader(fh)
                if r.get("text") and r.get("label")}
