"""The keyed audit trail and model signatures: a consistent rewrite without the key is found, an anchor
catches a rewrite with it, every change to the model store is recorded, a tampered-and-rehashed model
is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from botkit.cli import main
from botkit.core import signing
from botkit.core.config import settings
from botkit.core.registry import PIPELINE_FILE, RegistryError, get_info, load_model
from botkit.ops.governance import AuditLog, change_stage
from botkit.ops.governance.audit import GENESIS, _canonical
from botkit.ops.pipeline import train_evaluate_register

KEY = b"k" * 32


def _fill(path: Path) -> AuditLog:
    log = AuditLog(path, key=KEY)
    for i in range(4):
        log.record("train", who="alice", subject=f"m:{i}", details={"i": i})
    return log


def _rewrite_consistently(path: Path, mac) -> None:
    """What someone with write access to the file does: change an entry and rechain everything after it."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries[1]["who"] = "mallory"
    prev = GENESIS
    for e in entries:
        e["prev_hash"] = prev
        e["hash"] = mac({k: v for k, v in e.items() if k != "hash"})
        prev = e["hash"]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_consistent_rewrite_with_plain_sha256_is_found(tmp_path: Path) -> None:
    log = _fill(tmp_path / "audit.jsonl")
    assert log.verify() == []
    _rewrite_consistently(log.path, lambda body: hashlib.sha256(_canonical(body).encode()).hexdigest())
    problems = log.verify()
    assert problems and problems[0].startswith("seq 1 (line 1): hash does not match")


def test_consistent_rewrite_with_the_key_is_caught_by_the_anchor(tmp_path: Path) -> None:
    import hmac

    log = _fill(tmp_path / "audit.jsonl")
    anchor = log.head()
    _rewrite_consistently(log.path, lambda body: hmac.new(KEY, _canonical(body).encode(), hashlib.sha256).hexdigest())
    assert log.verify() == []  # an insider with the key leaves a valid chain ...
    assert log.verify(anchor=anchor) == [f"seq {anchor[0]}: hash differs from the anchor: the log was rewritten"]


def test_cli_anchor_and_verify_with_anchor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)  # the configured key: the CLI uses it too
    log.record("train", who="alice", subject="m:1")
    assert main(["audit", "anchor", "--path", str(path)]) == 0
    anchor = capsys.readouterr().out.strip()
    assert anchor == f"1:{log.head()[1]}"
    assert main(["audit", "verify", "--path", str(path), "--anchor", anchor]) == 0
    path.write_text("")  # the whole log replaced by an empty one
    assert main(["audit", "verify", "--path", str(path), "--anchor", anchor]) != 0
    assert "anchor seq 1" in capsys.readouterr().err


def test_training_and_stage_changes_are_recorded_with_hashes(tiny_dataset, model_name: str) -> None:
    log = AuditLog()
    before = len(log.entries())
    r = train_evaluate_register(dataset=tiny_dataset, name=model_name, who="ci")
    change_stage(r.tag, "production", who="ci", reason="test")
    new = log.entries()[before:]
    mine = [e for e in new if e["subject"] == r.tag]
    assert [e["action"] for e in mine] == ["train", "stage_change"]
    sha = get_info(r.tag)["metadata"]["artifact_sha256"]
    assert all(e["artefacts"] == sha and e["who"] == "ci" for e in mine)
    assert mine[0]["details"]["data_fingerprint"] == tiny_dataset.fingerprint()
    assert mine[1]["details"]["stage"] == "production" and mine[1]["details"]["reason"] == "test"
    assert log.verify() == []


def _rehash(tag: str, filename: str) -> None:
    root = Path(get_info(tag)["path"])
    doc = yaml.safe_load((root / "model.yaml").read_text())
    digest = hashlib.sha256((root / filename).read_bytes()).hexdigest()
    doc["metadata"]["artifact_sha256"][filename] = f"sha256:{digest}"
    (root / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_tampered_and_rehashed_model_is_refused_by_its_signature(tiny_dataset, model_name: str) -> None:
    a = train_evaluate_register(dataset=tiny_dataset, name=model_name, audit=False).tag
    b = train_evaluate_register(dataset=tiny_dataset, name=model_name + "x", audit=False).tag
    sig = signing.signature_path(a)
    assert sig.exists() and not sig.is_relative_to(Path(get_info(a)["path"]))  # apart from the model
    load_model(a)  # signed and intact
    # Swap in another valid model's pipeline and rewrite the recorded sha256, as an attacker would.
    (Path(get_info(a)["path"]) / PIPELINE_FILE).write_bytes((Path(get_info(b)["path"]) / PIPELINE_FILE).read_bytes())
    _rehash(a, PIPELINE_FILE)
    with pytest.raises(RegistryError, match="do not match the signature"):
        load_model(a)


def test_unsigned_model_is_refused_when_signatures_are_required(tiny_dataset, model_name: str, monkeypatch) -> None:
    tag = train_evaluate_register(dataset=tiny_dataset, name=model_name, audit=False).tag
    signing.signature_path(tag).unlink()
    load_model(tag)  # default "verify": loads with a warning
    monkeypatch.setattr(signing, "settings", settings.model_copy(update={"model_signatures": "require"}))
    with pytest.raises(RegistryError, match="no signature"):
        load_model(tag)
