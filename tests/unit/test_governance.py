"""Audit chain tamper evidence, promotion policy, promote/rollback, model card and retention."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botkit.core.registry import get_info, save_model, set_stage
from botkit.ops import governance
from botkit.ops.governance import (
    GENESIS,
    AuditError,
    AuditLog,
    GovernanceError,
    Policy,
    apply_retention,
    decide,
    format_log,
    model_card,
    promote,
    rollback,
    write_card,
)
from botkit.serving.events import ChatEvent, FeedbackEvent, open_store

SHA = "sha256:" + "ab" * 32


@pytest.fixture(autouse=True)
def _fast_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(governance.policy, "LATENCY_REPEATS", 20)


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl")


def _filled(log: AuditLog, n: int = 5) -> list[str]:
    for i in range(n):
        log.record("train", who="ci", subject=f"m:{i}", details={"i": i}, artefacts={"pipeline.skops": SHA})
    return log.path.read_text().splitlines(keepends=True)


def _rewrite(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("".join(lines))


# ------------------------------------------------------------------------------------ audit log


def test_entries_are_chained_from_genesis_and_carry_the_schema(log: AuditLog, monkeypatch) -> None:
    monkeypatch.setenv("BOTKIT_USER", "env-user")
    first = log.record("data_import", subject="shopbot", details={"n": 1})
    second = log.record("promote", who="alice", subject="m:1", artefacts={"bot.json": SHA})
    assert first["prev_hash"] == GENESIS and second["prev_hash"] == first["hash"]
    assert [first["seq"], second["seq"]] == [1, 2]
    assert first["who"] == "env-user" and second["who"] == "alice"
    assert set(second) == {"seq", "time", "who", "action", "subject", "details", "artefacts", "prev_hash", "hash"}
    assert second["time"].endswith("+00:00")
    assert log.entries() == [first, second]
    assert log.verify() == []
    assert log.head() == (2, second["hash"])
    monkeypatch.delenv("BOTKIT_USER")
    assert log.record("train", subject="m:2")["who"]  # the OS user


def test_record_refuses_unknown_actions_and_bad_digests(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        log.record("deploy", subject="m:1")
    with pytest.raises(ValueError, match="sha256"):
        log.record("train", subject="m:1", artefacts={"x": "md5:abc"})


def test_verify_names_an_edited_entry(log: AuditLog) -> None:
    lines = _filled(log)
    entry = json.loads(lines[2])
    entry["details"]["i"] = 99
    _rewrite(log, [*lines[:2], json.dumps(entry) + "\n", *lines[3:]])
    assert log.verify() == ["seq 3 (line 3): hash does not match the content: the entry was edited"]

    entry["hash"] = governance.audit._entry_hash(entry)  # a forger who recomputes the hash
    _rewrite(log, [*lines[:2], json.dumps(entry) + "\n", *lines[3:]])
    problems = log.verify()
    assert len(problems) == 1 and problems[0].startswith("seq 4 (line 4): prev_hash does not match the hash of seq 3")


def test_verify_names_deleted_entries(log: AuditLog) -> None:
    lines = _filled(log)
    _rewrite(log, lines[:2] + lines[3:])
    assert log.verify() == ["seq 3 missing between seq 2 and seq 4 (before line 3): entries were deleted"]
    _rewrite(log, lines[2:])
    assert log.verify() == ["seq 1-2 missing at the start of the log (before line 1): entries were deleted"]


def test_verify_names_reordered_entries(log: AuditLog) -> None:
    lines = _filled(log)
    _rewrite(log, [lines[0], lines[1], lines[3], lines[2], lines[4]])
    assert log.verify() == ["seq 3 (line 4) comes after seq 4: entries were reordered"]


def test_verify_and_record_catch_a_truncated_last_line(log: AuditLog) -> None:
    lines = _filled(log)
    _rewrite(log, [*lines[:4], lines[4][:40]])
    problems = log.verify()
    assert len(problems) == 1 and problems[0].startswith("line 5: truncated last line")
    with pytest.raises(AuditError, match="incomplete"):
        log.record("train", subject="m:9")
    assert len(log.entries()) == 4


def test_an_anchor_catches_entries_cut_off_at_the_end(log: AuditLog) -> None:
    lines = _filled(log)
    anchor = log.head()
    _rewrite(log, lines[:3])  # cut on a line boundary: the chain alone cannot see it
    assert log.verify() == []
    assert log.verify(anchor=anchor) == ["anchor seq 5 is not in the log (last seq 3): entries were cut off the end"]


_WRITER = """
import sys, time
from pathlib import Path
from botkit.ops.governance import AuditLog
path, go, worker, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
while not go.exists():
    time.sleep(0.005)
log = AuditLog(path)
for i in range(n):
    log.record("evaluate", who=f"w{worker}", subject=f"m:{worker}-{i}", details={"i": i})
"""


def test_concurrent_appends_from_several_processes_leave_a_valid_chain(log: AuditLog, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(log.path), str(go), str(w), "50"])
             for w in range(4)]
    time.sleep(0.3)  # let every writer start, then release them at once
    go.touch()
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    assert log.verify() == []
    entries = log.entries()
    assert [e["seq"] for e in entries] == list(range(1, 201))
    assert {e["subject"] for e in entries} == {f"m:{w}-{i}" for w in range(4) for i in range(50)}


def test_format_log_is_a_readable_table(log: AuditLog) -> None:
    log.record("reject", who="bob", subject="m:1", details={"reviewer": None, "rules": [
        {"name": "reviewer", "passed": False, "detail": "x"}, {"name": "min_oos_recall", "passed": True}]})
    text = format_log(log.entries())
    header, _, row = text.splitlines()
    assert header.split() == ["seq", "time", "(UTC)", "who", "action", "subject", "details"]
    assert row.startswith("1 ") and "bob" in row and "reject" in row and "failed=reviewer" in row
    assert format_log([]) == "(the audit log is empty)"


# ---------------------------------------------------------------------------------------- policy


def _policy(**changes) -> Policy:
    base = Policy(min_in_scope_accuracy=0.5, min_oos_recall=0.3, max_regression=0.05,
                  max_p95_latency_ms=10_000.0, require_reviewer=True, source="test")
    return dataclasses.replace(base, **changes)


def test_policy_loads_the_shipped_default_and_refuses_sloppy_files(tmp_path: Path) -> None:
    shipped = Policy.load()
    assert shipped.require_reviewer is True and shipped.max_regression is not None
    assert shipped.source.endswith("policy.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("min_in_scope_accuracy: 0.9\nmin_oos_recal: 0.5\n")
    with pytest.raises(GovernanceError, match=r"unknown key.*min_oos_recal"):
        Policy.load(bad)
    bad.write_text("min_in_scope_accuracy: 0.9\n")
    with pytest.raises(GovernanceError, match="missing key"):
        Policy.load(bad)
    doc = {**shipped.to_dict(), "min_oos_recall": 1.5}
    with pytest.raises(GovernanceError, match="between 0 and 1"):
        Policy.from_dict(doc)
    off = Policy.from_dict({**shipped.to_dict(), "max_p95_latency_ms": None})
    assert off.max_p95_latency_ms is None and off.sha256 != shipped.sha256


def _save(trained, name: str, **model_changes) -> str:
    model = dataclasses.replace(trained.model, **model_changes)
    return save_model(model, trained.dataset, trained.evaluation.metrics, name=name)


def test_decide_passes_a_good_candidate_with_a_reviewer(trained, model_name, tiny_dataset) -> None:
    prod = _save(trained, model_name)
    set_stage(prod, "production")
    cand = _save(trained, model_name)
    d = decide(cand, reviewer="alice", policy=_policy(), test_data=tiny_dataset)
    assert d.approved and not d.failed
    assert d.production_tag == prod and d.production_metrics is not None
    assert d.candidate_metrics["in_scope_accuracy"] == d.production_metrics["in_scope_accuracy"]
    assert [r.name for r in d.rules] == ["reviewer", "min_in_scope_accuracy", "min_oos_recall", "max_regression",
                                         "max_p95_latency_ms"]
    assert d.test_set == {"name": "tiny", "fingerprint": tiny_dataset.fingerprint(), "n": len(tiny_dataset.test)}
    assert d.explain().startswith(f"APPROVED: {cand} vs production {prod}")


def test_a_candidate_worse_than_production_beyond_max_regression_is_rejected(trained, model_name,
                                                                             tiny_dataset) -> None:
    prod = _save(trained, model_name)
    set_stage(prod, "production")
    worse = _save(trained, model_name, threshold=1.01)  # falls back on everything
    d = decide(worse, reviewer="alice", policy=_policy(min_in_scope_accuracy=None), test_data=tiny_dataset)
    assert not d.approved
    failed = {r.name: r.detail for r in d.failed}
    assert set(failed) == {"max_regression"}
    assert "in_scope_accuracy dropped" in failed["max_regression"]
    assert f"more than the allowed 0.05 vs production {prod}" in failed["max_regression"]
    d = decide(worse, reviewer="alice", policy=_policy(), test_data=tiny_dataset)
    assert "is below the minimum 0.5" in {r.name: r.detail for r in d.failed}["min_in_scope_accuracy"]
    assert "FAIL  max_regression" in d.explain()


def test_a_missing_reviewer_and_slow_predictions_are_rejected_with_reasons(trained, model_name,
                                                                           tiny_dataset) -> None:
    cand = _save(trained, model_name)
    d = decide(cand, reviewer="  ", policy=_policy(max_p95_latency_ms=1e-6), test_data=tiny_dataset)
    failed = {r.name: r.detail for r in d.failed}
    assert failed["reviewer"] == "the policy requires a named reviewer and none was given"
    assert "exceeds the limit" in failed["max_p95_latency_ms"]
    assert {r.name: r.detail for r in d.rules}["max_regression"].startswith("no production model yet")
    assert decide(cand, reviewer=None, policy=_policy(require_reviewer=False), test_data=tiny_dataset).approved


# ------------------------------------------------------------------------------ promote / rollback


def test_promote_changes_stages_and_records_the_evidence(trained, model_name, tiny_dataset, log) -> None:
    first = _save(trained, model_name)
    d1 = promote(first, reviewer="alice", policy=_policy(), test_data=tiny_dataset, audit=log, who="ops")
    second = _save(trained, model_name)
    d2 = promote(second, reviewer="bob", policy=_policy(), test_data=tiny_dataset, audit=log, who="ops")
    assert d1.approved and d2.approved and d2.production_tag == first
    assert get_info(second)["stage"] == "production" and get_info(first)["stage"] == "archived"
    assert [e["action"] for e in log.entries()] == ["policy_change", "promote", "promote"]
    entry = log.entries()[-1]
    assert entry["subject"] == second and entry["who"] == "ops"
    assert entry["details"]["previous"] == first and entry["details"]["reviewer"] == "bob"
    assert entry["details"]["policy"]["sha256"] == _policy().sha256
    assert {r["name"] for r in entry["details"]["rules"]} >= {"reviewer", "max_regression"}
    assert entry["artefacts"] == get_info(second)["metadata"]["artifact_sha256"]
    assert log.verify() == []
    with pytest.raises(GovernanceError, match="already in production"):
        promote(second, reviewer="bob", policy=_policy(), test_data=tiny_dataset, audit=log)


def test_a_rejected_promotion_leaves_stages_alone_and_force_cannot_skip_the_reviewer(
        trained, model_name, tiny_dataset, log) -> None:
    prod = _save(trained, model_name)
    set_stage(prod, "production")
    worse = _save(trained, model_name, threshold=1.01)
    d = promote(worse, reviewer="alice", policy=_policy(), test_data=tiny_dataset, audit=log)
    assert not d.approved
    assert get_info(prod)["stage"] == "production" and get_info(worse)["stage"] == "staging"
    assert log.entries()[-1]["action"] == "reject"
    d = promote(worse, reviewer=None, policy=_policy(), test_data=tiny_dataset, audit=log, force=True)
    assert not d.approved and get_info(worse)["stage"] == "staging"
    d = promote(worse, reviewer="alice", policy=_policy(), test_data=tiny_dataset, audit=log, force=True)
    assert d.approved and d.forced and get_info(worse)["stage"] == "production"
    entry = log.entries()[-1]
    assert entry["action"] == "promote" and entry["details"]["forced"] is True
    assert [e["action"] for e in log.entries()] == ["policy_change", "reject", "reject", "promote"]


def test_rollback_restores_the_previous_production_model(trained, model_name, tiny_dataset, log) -> None:
    a, b = _save(trained, model_name), _save(trained, model_name)
    for tag in (a, b):
        promote(tag, reviewer="alice", policy=_policy(), test_data=tiny_dataset, audit=log)
    assert rollback(reason="complaints about refunds", who="oncall", name=model_name, audit=log) == (a, b)
    assert get_info(a)["stage"] == "production" and get_info(b)["stage"] == "archived"
    entry = log.entries()[-1]
    assert entry["action"] == "rollback" and entry["who"] == "oncall"
    assert entry["details"] == {"restored": a, "demoted": b, "reason": "complaints about refunds"}
    with pytest.raises(GovernanceError, match="no earlier production model"):
        rollback(reason="again", name=model_name, audit=log)  # a was the first: nothing before it
    with pytest.raises(GovernanceError, match="reason"):
        rollback(reason=" ", name=model_name, audit=log)
    assert log.verify() == []


def test_rollback_without_audit_history_uses_the_newest_older_archived_model(trained, model_name, log) -> None:
    a, b, c = (_save(trained, model_name) for _ in range(3))
    for tag in (a, b, c):
        set_stage(tag, "production")  # promoted outside the governed path
    assert rollback(reason="bad release", name=model_name, audit=log) == (b, c)


# ------------------------------------------------------------------------------------ model card


def test_model_card_has_every_section_and_the_reviewer_from_the_audit_log(
        trained, model_name, tiny_dataset, log, tmp_path) -> None:
    parent = _save(trained, model_name)
    model = trained.model
    child = save_model(model, trained.dataset, trained.evaluation.metrics, name=model_name, parent=parent)
    card = model_card(child, audit=log)
    for section in ("## Intended use", "## Out-of-scope behaviour and fallback", "## Data",
                    "## Training parameters", "## Metrics (test split)", "## Known limitations", "## Lineage",
                    "## Stage"):
        assert section in card, section
    assert "**Reviewer:** not reviewed" in card and "**Stage:** staging" in card
    assert tiny_dataset.fingerprint() in card and "| train | 24 | 6 |" in card
    assert f"threshold **{round(model.threshold, 4)}**" in card
    assert "Five weakest intents" in card and "| greeting |" in card
    assert "English only" in card and "synonym" in card and "Short inputs" in card
    assert f"1. `{child}` (this model" in card and f"2. `{parent}` (parent" in card
    assert "| C | 0.5 |" in card and "**Owner:**" in card

    promote(child, reviewer="carol", policy=_policy(), test_data=tiny_dataset, audit=log)
    card = model_card(child, audit=log)
    assert "**Reviewer:** carol" in card and "**Stage:** production" in card
    path = write_card(child, tmp_path / "cards", audit=log)
    assert path.name == f"model_card_{child.replace(':', '_')}.md" and path.read_text() == card


# ------------------------------------------------------------------------------------- retention

NOW = 1_800_000_000.0
DAY = 86400.0


def _events_store(tmp_path: Path):
    store = open_store("sqlite", path=tmp_path / "events.sqlite3")
    text = "my card is 4111 1111 1111 1111, mail me at {}@example.com"
    store.append_many([
        ChatEvent(ts=NOW - 40 * DAY, request_id="old", session_id=None, text=text.format("old"), intent="refund",
                  confidence=0.9, fallback=False, latency_ms=2.0, model_version="v1"),
        FeedbackEvent(ts=NOW - 39 * DAY, request_id="old", rating="down", correct_intent="order_status",
                      comment="call 030 12345678"),
        ChatEvent(ts=NOW - 2 * DAY, request_id="new", session_id=None, text=text.format("new"), intent="refund",
                  confidence=0.9, fallback=False, latency_ms=2.0, model_version="v1"),
    ])
    return store


def test_retention_drops_only_old_text_and_is_audited(tmp_path: Path, log: AuditLog) -> None:
    store = _events_store(tmp_path)
    assert apply_retention(store, 30, mode="drop", now=NOW, audit=log, who="dpo") == 2
    by_id = {(e.kind, e.payload.request_id): e.payload for e in store.read()}
    assert by_id["chat", "old"].text == "" and by_id["feedback", "old"].comment == ""
    assert by_id["chat", "old"].intent == "refund"  # only the text goes
    assert "4111" in by_id["chat", "new"].text
    entry = log.entries()[-1]
    assert entry["action"] == "retention" and entry["who"] == "dpo"
    assert entry["details"]["old_events"] == 2 and entry["details"]["changed"] == 2
    assert apply_retention(store.path, 30, mode="drop", now=NOW, audit=log) == 0  # idempotent
    store.close()


def test_retention_redact_mode_re_redacts_old_text(tmp_path: Path, log: AuditLog) -> None:
    store = _events_store(tmp_path)
    assert apply_retention(store, 30, mode="redact", now=NOW, audit=log) == 2
    by_id = {(e.kind, e.payload.request_id): e.payload for e in store.read()}
    assert by_id["chat", "old"].text == "my card is <CARD>, mail me at <EMAIL>"
    assert by_id["feedback", "old"].comment == "call <PHONE>"
    assert "new@example.com" in by_id["chat", "new"].text
    files = b"".join(p.read_bytes() for p in tmp_path.glob("events.sqlite3*"))
    assert b"new@example.com" in files and b"old@example.com" not in files  # no copy left in free pages or WAL
    with pytest.raises(ValueError, match="mode"):
        apply_retention(store, 30, mode="shred", audit=log)
    (tmp_path / "other.db").write_bytes(b"")
    with pytest.raises(GovernanceError, match="not a botkit event store"):
        apply_retention(tmp_path / "other.db", 30, audit=log)
    with pytest.raises(GovernanceError, match="SQLite"):
        apply_retention(object(), 30, audit=log)  # type: ignore[arg-type]
    store.close()
