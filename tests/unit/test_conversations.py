"""Conversation tests: the runner, its YAML format, JUnit XML, the CLI's exit code, and the
project's own conversations (tests/conversations) against the default bot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.core.data import load
from botkit.core.model import IntentModel, TrainParams
from botkit.ops.conversations import ConversationError, load_conversations, run_conversations, write_junit

CONVERSATIONS = Path(__file__).resolve().parents[1] / "conversations"


@pytest.fixture(scope="module")
def shopbot() -> IntentModel:
    """The default recipe on the bundled data, trained once for this module."""
    return IntentModel.train(load(), TrainParams(seed=42))


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_shopbot_conversations_pass_on_the_default_bot(shopbot: IntentModel, tmp_path: Path) -> None:
    convs = load_conversations([CONVERSATIONS])
    assert len(convs) >= 15
    results = run_conversations(shopbot, convs)
    failed = [f"{r.conversation.name}: {'; '.join(r.failures)}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    root = ET.parse(write_junit(results, tmp_path / "conv.xml")).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(convs)) and suite.get("failures") == "0"


def test_every_failing_turn_is_reported(shopbot: IntentModel, tmp_path: Path) -> None:
    path = _write(tmp_path, """
conversations:
  - name: wrong expectations
    turns:
      - user: where is my parcel right now
        intent: refund_status
      - user: who painted the mona lisa
        intent: greeting
      - user: hello there
        intent: greeting
        reply_contains: this text is in no reply
      - user: thanks a lot
        intent: thanks
""")
    [result] = run_conversations(shopbot, load_conversations([path]))
    assert len(result.failures) == 3
    assert "turn 1" in result.failures[0] and "expected refund_status" in result.failures[0]
    assert "got the fallback" in result.failures[1]
    assert "reply does not contain" in result.failures[2]
    xml = ET.parse(write_junit([result], tmp_path / "r.xml")).getroot()
    failure = xml.find("testsuite/testcase/failure")
    assert failure is not None and failure.text is not None and failure.text.count("turn") == 3


@pytest.mark.parametrize(("body", "message"), [
    ("conversations: []", "expected 'conversations:'"),
    ("conversations:\n  - name: x\n    turns: []", "has no turns"),
    ("conversations:\n  - name: x\n    turns:\n      - user: hi", "exactly one of"),
    ("conversations:\n  - name: x\n    turns:\n      - user: hi\n        intent: greeting\n        fallback: true",
     "exactly one of"),
    ("conversations:\n  - name: x\n    turns:\n      - user: hi\n        intnet: greeting", "unknown key"),
    ("conversations: [", "not valid YAML"),
])
def test_malformed_files_are_refused_with_the_place(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConversationError, match=message):
        load_conversations([_write(tmp_path, body)])


def test_duplicate_names_and_missing_paths_are_refused(tmp_path: Path) -> None:
    one = "conversations:\n  - name: same\n    turns:\n      - user: hi\n        intent: greeting\n"
    _write(tmp_path, one, "a.yaml")
    _write(tmp_path, one, "b.yaml")
    with pytest.raises(ConversationError, match="unique"):
        load_conversations([tmp_path])
    with pytest.raises(ConversationError, match="no such file"):
        load_conversations([tmp_path / "nope.yaml"])


def test_cli_exit_code_and_junit(trained_tag: str, tmp_path: Path, capsys) -> None:
    """Against a stored model (the session's tiny bot): 1 when a conversation fails, 0 when all pass."""
    good = _write(tmp_path, "conversations:\n  - name: ok\n    turns:\n      - user: hello\n        intent: greeting\n"
                  "      - user: what is the capital of france\n        fallback: true\n", "good.yaml")
    bad = _write(tmp_path, "conversations:\n  - name: bad\n    turns:\n      - user: hello\n        intent: refund\n",
                 "bad.yaml")
    junit = tmp_path / "out.xml"
    assert main(["test", "conversations", str(good), "--model", trained_tag, "--junit", str(junit)]) == 0
    assert "1/1 conversations passed" in capsys.readouterr().out
    assert main(["test", "conversations", str(good), str(bad), "--model", trained_tag, "--junit", str(junit)]) == 1
    assert "FAIL  bad" in capsys.readouterr().out
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"
    assert main(["test", "conversations", str(tmp_path / "missing.yaml"), "--model", trained_tag]) == 2
