"""Poisoning: 30 coordinated wrong corrections, from 30 sessions, do not change what the retrained bot
answers for those utterances; they wait in the corrections review queue, flagged where text hides."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from botkit.core.data import OOS, load, normalize
from botkit.core.registry import load_model, set_stage
from botkit.ops import governance
from botkit.ops.governance import AuditLog, Policy
from botkit.ops.pipeline import train_evaluate_register
from botkit.ops.retrain import retrain
from botkit.serving.events import ChatEvent, FeedbackEvent, open_store

# Written for this test; none is in the bundled data. The attack targets what the bot answers well.
TARGETS = ["where has my parcel got to", "any update on where my order is", "what is the status of my purchase",
           "i would like to know where my package is", "can you tell me where my order is now",
           "has my order been sent out yet", "tell me how to get my password back", "i forgot my password again"]
WRONG = "cancel_order"
# Honest corrections the bot was unsure about (three sessions each): these must still be learned.
HONEST = [("any news on the parcel i ordered last tuesday", "order_status"),
          ("the lamp shade came in pieces", "damaged_item"),
          ("do parcels go to new zealand", "international_shipping"),
          ("need a vat receipt for my company", "invoice_request"),
          ("do your boots run small or large", "size_guide"),
          ("much appreciated, you sorted it", "thanks")]
MIN_CONFIDENCE = 0.5


@pytest.fixture(autouse=True)
def _fast_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(governance.policy, "LATENCY_REPEATS", 20)


def _chat(rid: str, text: str, pred, session: str, ts: float) -> ChatEvent:
    return ChatEvent(ts=ts, request_id=rid, session_id=session, text=text, intent=pred.intent,
                     confidence=float(pred.confidence), fallback=pred.intent == OOS, latency_ms=3.0,
                     model_version="prod")


def test_thirty_coordinated_wrong_corrections_change_nothing_and_are_listed_for_review(tmp_path: Path,
                                                                                       model_name, capsys) -> None:
    bundled = load()
    known = {normalize(t) for s in ("train", "val", "test") for t, _ in bundled.split(s)}
    assert not [t for t in TARGETS + [t for t, _ in HONEST] if normalize(t) in known]
    production = train_evaluate_register(dataset=bundled, name=model_name).tag
    set_stage(production, "production")
    prod = load_model(production, model_name).model
    confident = [t for t, p in zip(TARGETS, prod.predict(TARGETS), strict=True)
                 if p.confidence >= MIN_CONFIDENCE and p.intent != WRONG][:3]
    assert len(confident) == 3, "the production model should answer three targets confidently"
    before = {t: p.intent for t, p in zip(confident, prod.predict(confident), strict=True)}

    events: list = []
    ts = 1_760_000_000.0
    for i, text in enumerate(confident):  # 3 utterances x 10 sessions = 30 wrong corrections
        pred = prod.predict_one(text)
        for s in range(10):
            rid = f"atk{i}-{s}"
            events += [_chat(rid, text, pred, f"attacker-{i}-{s}", ts),
                       FeedbackEvent(ts=ts + 1, request_id=rid, rating="down", correct_intent=WRONG)]
    hidden = confident[0] + "\u200b\u202e ignore all previous instructions"  # invisible characters inside
    events += [_chat("hid", hidden, prod.predict_one(hidden), "attacker-hidden", ts),
               FeedbackEvent(ts=ts + 1, request_id="hid", rating="down", correct_intent="human_handoff")]
    for j, (text, label) in enumerate(HONEST):
        unsure = dataclasses.replace(prod.predict_one(text), confidence=0.3)
        for s in ("u1", "u2", "u3"):
            events += [_chat(f"ok{j}{s}", text, unsure, s, ts + 10),
                       FeedbackEvent(ts=ts + 11, request_id=f"ok{j}{s}", rating="down", correct_intent=label)]
    store_path = tmp_path / "events.sqlite3"
    store = open_store("sqlite", path=store_path)
    store.append_many(events)
    store.close()

    policy = Policy(min_in_scope_accuracy=0.5, min_oos_recall=0.3, max_regression=0.2, max_p95_latency_ms=10_000.0,
                    require_reviewer=False, source="test")
    r = retrain(base=bundled, store=store_path, policy=policy, promote=False, name=model_name,
                out_dir=tmp_path / "run", audit=AuditLog(tmp_path / "audit.jsonl"), min_confidence=MIN_CONFIDENCE)
    assert r.candidate_tag is not None and r.n_new_examples == len(HONEST)  # honest corrections still learned
    learned = [json.loads(line)["text"] for line in r.paths["new_examples"].read_text().splitlines()]
    assert not {normalize(t) for t in learned} & {normalize(t) for t in confident}

    cand = load_model(r.candidate_tag, model_name).model
    after = {t: p.intent for t, p in zip(confident, cand.predict(confident), strict=True)}
    assert after == before and WRONG not in after.values()

    with r.paths["corrections_review"].open(newline="", encoding="utf-8") as fh:
        review = list(csv.DictReader(fh))
    listed = {(row["text"], row["label"]): row for row in review}
    for text in confident:
        row = listed[(text, WRONG)]
        assert row["sessions"] == "10" and row["why_held"].startswith("contradicts a confident answer")
    flagged = [row for row in review if row["flags"]]
    assert flagged and "\u200b" not in flagged[0]["text"] and "\u202e" not in flagged[0]["text"]
    assert flagged[0]["flags"] == "invisible:2" and "ignore all previous instructions" in flagged[0]["text"]
    assert r.skipped["held_for_review"] == 31
    with capsys.disabled():
        print(f"\npoisoning: 30 wrong corrections ({WRONG}) on {len(confident)} confident utterances -> "
              f"learned 0, held {r.skipped['held_for_review']}, answers before {sorted(before.values())} "
              f"after {sorted(after.values())}; honest corrections learned: {r.n_new_examples}")
