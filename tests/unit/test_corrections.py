"""The correction rule in isolation: agreement of k sessions on an unsure answer, disagreement,
confident answers, reviewer approvals, one vote per session, and invisible characters."""

from __future__ import annotations

import csv
from pathlib import Path

from botkit.ops.corrections import decide, load_approvals, visible, write_review
from botkit.serving.events import ChatEvent, FeedbackEvent

KNOWN = {"order_status", "cancel_order", "refund_status", "oos"}


def _votes(text: str, label: str, sessions: list[str | None], confidence: float = 0.3, prefix: str = "r"):
    chats, fixes = {}, {}
    for i, s in enumerate(sessions):
        rid = f"{prefix}{i}"
        chats[rid] = ChatEvent(ts=1.0, request_id=rid, session_id=s, text=text, intent="oos", confidence=confidence,
                               fallback=True, latency_ms=1.0, model_version="m")
        fixes[rid] = FeedbackEvent(ts=2.0, request_id=rid, rating="down", correct_intent=label)
    return chats, fixes


def _run(chats, fixes, approved=frozenset()):
    return decide(chats, fixes, known=KNOWN, min_sessions=3, min_confidence=0.5, approved=set(approved))


def test_three_sessions_agreeing_on_an_unsure_answer_are_learned_once() -> None:
    chats, fixes = _votes("where is my parcel", "order_status", ["a", "b", "c", "c"])
    learnable, accepted, held = _run(chats, fixes)
    assert len(learnable) == 1 and len(accepted) == 1 and not held
    assert accepted[0].sessions == {"a", "b", "c"} and len(accepted[0].requests) == 4


def test_one_session_repeating_itself_or_sessionless_votes_do_not_count() -> None:
    chats, fixes = _votes("where is my parcel", "order_status", ["a"] * 5 + [None] * 5)
    learnable, _, held = _run(chats, fixes)
    assert not learnable and held[0].reason == "1 of 3 sessions"


def test_confident_answers_and_disagreements_wait_for_a_reviewer() -> None:
    c1, f1 = _votes("where is my parcel", "cancel_order", list("abcdefgh"), confidence=0.97)
    c2, f2 = _votes("refund me", "refund_status", list("abc"), prefix="x")
    c3, f3 = _votes("refund me", "order_status", list("d"), prefix="y")
    learnable, accepted, held = _run({**c1, **c2, **c3}, {**f1, **f2, **f3})
    assert not learnable and not accepted
    reasons = sorted(b.reason for b in held)
    assert reasons[0].startswith("contradicts a confident answer")
    assert reasons[1:] == ["sessions disagree on the label"] * 2


def test_a_reviewer_approval_admits_a_held_correction(tmp_path: Path) -> None:
    chats, fixes = _votes("where is my parcel\u200b", "cancel_order", ["a"], confidence=0.99)
    _, _, held = _run(chats, fixes)
    review = tmp_path / "corrections_review.csv"
    assert write_review(review, held) == 1
    rows = list(csv.DictReader(review.open()))
    assert rows[0]["text"] == "where is my parcel" and rows[0]["flags"] == "invisible:1"
    learnable, accepted, held = _run(chats, fixes, approved=load_approvals(review))
    assert len(learnable) == 1 and accepted[0].reason == "approved by a reviewer" and not held


def test_visible_strips_bidi_zero_width_and_controls_and_counts_them() -> None:
    assert visible("ok\u202egnp.exe\u200b\x07") == ("okgnp.exe", "invisible:3")
    assert visible("plain text\n") == ("plain text\n", "")
