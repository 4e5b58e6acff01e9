"""Retraining from feedback, end to end on the bundled shopbot data, plus its data rules in isolation."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from botkit.core.data import OOS, load, normalize
from botkit.core.registry import get_info, set_stage
from botkit.ops import governance
from botkit.ops.governance import AuditLog, Policy
from botkit.ops.pipeline import train_evaluate_register
from botkit.ops.retrain import retrain
from botkit.serving.events import ChatEvent, FeedbackEvent, open_store

# Customer messages written for this test, none of them in the bundled data: what users typed
# and then corrected the bot about ("held out" from every split).
HELD_OUT = [
    ("any news on the parcel i ordered last tuesday", "order_status"),
    ("has anything happened with purchase 5521 yet", "order_status"),
    ("i'd like to call off the purchase i made this morning", "cancel_order"),
    ("scrap my most recent purchase please", "cancel_order"),
    ("the promo voucher gets refused at checkout", "apply_coupon"),
    ("the lamp shade came in pieces", "damaged_item"),
    ("the mug was cracked when i unwrapped it", "damaged_item"),
    ("how many working days until it lands on my doorstep", "delivery_time"),
    ("swap these trainers for a half size up", "exchange_item"),
    ("can i buy store credit as a birthday present", "gift_card"),
    ("cheers, that is everything for today", "goodbye"),
    ("put me through to somebody from your team", "human_handoff"),
    ("do parcels go to new zealand", "international_shipping"),
    ("need a vat receipt for my company", "invoice_request"),
    ("the charger was not in the box with the phone case", "missing_item"),
    ("my bank keeps rejecting the transaction", "payment_failed"),
    ("do you take apple pay", "payment_methods"),
    ("will the green raincoat be restocked", "product_availability"),
    ("my reimbursement still has not shown up on my statement", "refund_status"),
    ("the login page rejects my credentials, how do i set new ones", "reset_password"),
    ("how do i post back a pair of jeans", "return_item"),
    ("is next day courier something you offer", "shipping_options"),
    ("do your boots run small or large", "size_guide"),
    ("are you open on bank holidays", "store_hours"),
    ("much appreciated, you sorted it", "thanks"),
    ("where exactly is my box right now according to the courier", "track_package"),
    ("i moved house, the postal details need updating", "update_address"),
    ("how long is the guarantee on the bluetooth speaker", "warranty"),
    ("i want to open a profile with you", "create_account"),
    ("what is the best lasagne recipe", OOS),
]
LEAKS = 3  # corrections whose text is a test utterance: must never be learned
LOW_CONFIDENCE = [("lamp thing", 0.21), ("umm the blue one?", 0.33), ("hmm ok so", 0.12),
                  ("what about the other", 0.44), ("=HYPERLINK(\"http://x\")", 0.29)]


@pytest.fixture(autouse=True)
def _fast_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(governance.policy, "LATENCY_REPEATS", 20)


@pytest.fixture(scope="module")
def bundled():
    return load()


def _chat(rid: str, text: str, intent: str, confidence: float, ts: float, session: str = "s1") -> ChatEvent:
    return ChatEvent(ts=ts, request_id=rid, session_id=session, text=text, intent=intent, confidence=confidence,
                     fallback=intent == OOS, latency_ms=3.0, model_version="prod")


def _fill_store(path: Path, held_out_file: Path, bundled) -> list[str]:
    """Chat + corrective feedback for the held-out file, leaks, and uncorrected low-confidence chats."""
    rows = [json.loads(line) for line in held_out_file.read_text().splitlines()]
    leaks = [(t, y) for t, y in bundled.test if y != OOS][:LEAKS]
    events: list = []
    ts = 1_750_000_000.0
    for i, (text, intent) in enumerate([(r["text"], r["intent"]) for r in rows] + leaks):
        for s in ("s1", "s2", "s3"):  # three sessions agree: the rule of botkit.ops.corrections
            rid = f"fix{i}{s}"
            events += [_chat(rid, text, "greeting", 0.3, ts + i, session=s),
                       FeedbackEvent(ts=ts + i + 0.5, request_id=rid, rating="down", correct_intent=intent)]
    for i, (text, conf) in enumerate(LOW_CONFIDENCE):
        events.append(_chat(f"low{i}", text, OOS, conf, ts + 100 + i))
    events += [_chat("sure", "where is my refund", "refund_status", 0.97, ts + 200),  # confident: no review
               _chat("liked", "hm", OOS, 0.1, ts + 201),  # low, but the user rated it: no review
               FeedbackEvent(ts=ts + 202, request_id="liked", rating="up")]
    store = open_store("sqlite", path=path)
    store.append_many(events)
    store.close()
    return [f"low{i}" for i in range(len(LOW_CONFIDENCE))]


def _policy(**changes) -> Policy:
    base = Policy(min_in_scope_accuracy=0.75, min_oos_recall=0.7, max_regression=0.05,
                  max_p95_latency_ms=10_000.0, require_reviewer=True, source="test")
    return dataclasses.replace(base, **changes)


def test_the_held_out_utterances_are_new(bundled) -> None:
    known = {normalize(t) for s in ("train", "val", "test") for t, _ in bundled.split(s)}
    assert not [t for t, _ in HELD_OUT if normalize(t) in known]
    assert {y for _, y in HELD_OUT} <= set(bundled.intents) | {OOS}


def test_retrain_end_to_end_on_the_bundled_data(tmp_path: Path, bundled, model_name) -> None:
    production = train_evaluate_register(dataset=bundled, name=model_name).tag
    set_stage(production, "production")
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps({"text": t, "intent": y}) + "\n" for t, y in HELD_OUT))
    events = tmp_path / "events.sqlite3"
    low_ids = _fill_store(events, held_out, bundled)
    log = AuditLog(tmp_path / "audit.jsonl")

    # No reviewer: the policy must reject, and production must stay where it is.
    r = retrain(base=bundled, store=events, reviewer=None, policy=_policy(), name=model_name,
                out_dir=tmp_path / "run1", audit=log, who="retrain-job")
    assert r.candidate_tag and r.production_tag == production
    cand = get_info(r.candidate_tag)
    assert cand["metadata"]["parent"] == production and cand["stage"] == "staging"
    assert cand["metadata"]["data_fingerprint"] == r.data_fingerprint != bundled.fingerprint()
    assert cand["metadata"]["data_sizes"]["train"]["in_scope"] == bundled.sizes()["train"]["in_scope"] + 29
    assert r.n_new_examples == len(HELD_OUT) and r.skipped == {"leak_val_test": LEAKS}
    assert r.decision is not None and not r.decision.approved and not r.promoted
    assert [f.name for f in r.decision.failed] == ["reviewer"]
    assert r.decision.production_tag == production and r.decision.production_metrics is not None
    assert get_info(production)["stage"] == "production"

    with r.paths["review_queue"].open() as fh:
        queue = list(csv.DictReader(fh))
    assert [q["request_id"] for q in queue] == sorted(low_ids, key=lambda i: LOW_CONFIDENCE[int(i[3:])][1])
    assert list(queue[0]) == ["request_id", "text", "predicted_intent", "confidence", "flags"]
    assert queue[0] == {"request_id": "low2", "text": "hmm ok so", "predicted_intent": OOS, "confidence": "0.1200",
                        "flags": ""}
    assert r.n_review == len(LOW_CONFIDENCE)
    assert {q["text"] for q in queue} >= {"lamp thing", "'=HYPERLINK(\"http://x\")"}  # no formula runs

    table = r.paths["comparison"].read_text()
    assert "| in_scope_accuracy |" in table and "| macro_f1 |" in table and "leak_val_test 3" in table
    assert "FAIL  reviewer" in table
    assert r.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    new = [json.loads(line) for line in r.paths["new_examples"].read_text().splitlines()]
    assert sorted((e["text"], e["intent"]) for e in new) == sorted(HELD_OUT)

    actions = [(e["action"], e["subject"]) for e in log.entries()]
    assert actions == [("data_import", r.dataset_name), ("train", r.candidate_tag),
                       ("policy_change", "test"), ("reject", r.candidate_tag)]
    data_import = log.entries()[0]
    assert data_import["who"] == "retrain-job"
    assert data_import["details"]["skipped"] == {"leak_val_test": LEAKS}
    assert data_import["details"]["fingerprint"] == r.data_fingerprint
    assert set(data_import["artefacts"]) == {"new_examples.jsonl", "review_queue.csv", "corrections_review.csv"}

    # With a reviewer the same events make the same data set, and the candidate goes live.
    r2 = retrain(base=bundled, store=events, reviewer="alice", policy=_policy(), name=model_name,
                 out_dir=tmp_path / "run2", audit=log)
    assert r2.data_fingerprint == r.data_fingerprint
    assert r2.promoted and r2.decision is not None and r2.decision.approved, r2.decision.explain()
    assert get_info(r2.candidate_tag)["stage"] == "production" and get_info(production)["stage"] == "archived"
    assert [e["action"] for e in log.entries()][-3:] == ["data_import", "train", "promote"]
    assert log.entries()[-1]["details"]["previous"] == production
    assert log.verify() == []


def test_no_usable_feedback_trains_nothing_but_still_writes_the_review_queue(tmp_path: Path, bundled,
                                                                            model_name) -> None:
    store = open_store("sqlite", path=tmp_path / "events.sqlite3")
    store.append_many([_chat("a", "blorp", OOS, 0.2, 1.0),
                       _chat("b", "where is my refund", "refund_status", 0.4, 2.0),
                       FeedbackEvent(ts=3.0, request_id="b", rating="down", correct_intent="no_such_intent"),
                       FeedbackEvent(ts=4.0, request_id="ghost", rating="down", correct_intent="refund_status")])
    log = AuditLog(tmp_path / "audit.jsonl")
    r = retrain(base=bundled, store=store, name=model_name, out_dir=tmp_path / "run", audit=log)
    store.close()
    assert r.candidate_tag is None and r.decision is None and not r.promoted
    assert r.skipped == {"no_chat_event": 1, "unknown_intent": 1}
    assert r.n_review == 1 and r.data_fingerprint == bundled.fingerprint()
    assert log.entries() == []


def test_corrections_that_repeat_or_contradict_training_data_are_skipped(tmp_path: Path, bundled,
                                                                         model_name) -> None:
    from botkit.ops.retrain import _examples

    text, intent = bundled.train[0]
    other = next(y for y in bundled.intents if y != intent)
    chats = {"same": _chat("same", text.upper() + "!", intent, 0.3, 1.0),
             "clash": _chat("clash", text, other, 0.3, 2.0),
             "twice1": _chat("twice1", "do the pink socks come in kids sizes", OOS, 0.3, 3.0),
             "twice2": _chat("twice2", "Do the pink socks come in kids sizes?", OOS, 0.3, 4.0),
             "gone": _chat("gone", "", OOS, 0.3, 5.0)}
    fixes = {rid: FeedbackEvent(ts=9.0, request_id=rid, rating="down",
                                correct_intent=other if rid == "clash" else intent if rid == "same"
                                else "size_guide")
             for rid in chats}
    examples, skipped = _examples(bundled, chats, fixes)
    assert examples == [("do the pink socks come in kids sizes", "size_guide")]
    assert skipped == {"conflicts_with_train": 1, "duplicate": 2, "empty_text": 1}
