"""Conversation tests: scripted multi-turn chats with the expected intent (or fallback) per turn.

Why: aggregate metrics do not say whether the conversations people actually have still work
("hi" → "my parcel is broken" → "can I talk to a person" → "thanks, bye"). A YAML file per
topic keeps them readable for non-programmers; the runner checks every turn, writes JUnit XML
(one test case per conversation) for CI, and the exit code gates a release.

Format (one file holds any number of conversations)::

    conversations:
      - name: broken item, then a person
        turns:
          - user: hi there
            intent: greeting
          - user: the mug arrived smashed
            intent: damaged_item
            reply_contains: photo        # optional: a substring of the reply (case-insensitive)
          - user: what's the capital of peru
            fallback: true               # or intent: oos

The reply checked is the one the bot gives for the request key ``<name>#<turn>`` (reply
variants are chosen by key), so a ``reply_contains`` check is deterministic.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from botkit.core.data import OOS
from botkit.core.model import IntentModel

__all__ = ["Conversation", "ConversationError", "ConversationResult", "Turn", "load_conversations",
           "run_conversations", "write_junit"]


class ConversationError(ValueError):
    """A conversation file that cannot be read; the message names the file and the place."""


@dataclass(frozen=True)
class Turn:
    user: str
    intent: str  # ``oos`` for an expected fallback
    reply_contains: str | None = None


@dataclass(frozen=True)
class Conversation:
    name: str
    turns: list[Turn]
    source: str


@dataclass
class ConversationResult:
    conversation: Conversation
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def _files(paths: Iterable[Path | str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")])
        elif p.is_file():
            out.append(p)
        else:
            raise ConversationError(f"{p}: no such file or directory")
    if not out:
        raise ConversationError(f"no conversation files (*.yaml) in {', '.join(map(str, paths))}")
    return out


def _turn(where: str, raw: object) -> Turn:
    if not isinstance(raw, dict) or not isinstance(raw.get("user"), str) or not raw["user"].strip():
        raise ConversationError(f"{where}: a turn needs 'user: <text>'")
    unknown = set(raw) - {"user", "intent", "fallback", "reply_contains"}
    if unknown:
        raise ConversationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    fallback = raw.get("fallback") is True
    intent = raw.get("intent")
    if fallback == (intent is not None and intent != OOS) or (intent is None and not fallback):
        raise ConversationError(f"{where}: give exactly one of 'intent: <name>' or 'fallback: true'")
    reply = raw.get("reply_contains")
    if reply is not None and (not isinstance(reply, str) or not reply.strip()):
        raise ConversationError(f"{where}: reply_contains must be non-empty text")
    return Turn(raw["user"], OOS if fallback else str(intent), reply)


def load_conversations(paths: Iterable[Path | str]) -> list[Conversation]:
    """Every conversation in the given files and folders (``*.yaml``), validated."""
    convs: list[Conversation] = []
    for f in _files(paths):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConversationError(f"{f}: not valid YAML ({str(exc).splitlines()[0]})") from None
        items = doc.get("conversations") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            raise ConversationError(f"{f}: expected 'conversations:' with a list of conversations")
        for i, c in enumerate(items):
            where = f"{f}: conversation {i + 1}"
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("turns"), list):
                raise ConversationError(f"{where}: needs 'name' and a list of 'turns'")
            if not c["turns"]:
                raise ConversationError(f"{where} ({c['name']}): has no turns")
            turns = [_turn(f"{where} ({c['name']}), turn {j + 1}", t) for j, t in enumerate(c["turns"])]
            convs.append(Conversation(c["name"], turns, str(f)))
    names = [c.name for c in convs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConversationError(f"conversation names must be unique: {', '.join(dupes)}")
    return convs


def run_conversations(model: IntentModel, conversations: Sequence[Conversation]) -> list[ConversationResult]:
    """Play every conversation against the model; every failing turn is recorded, not just the first."""
    results = []
    for conv in conversations:
        t0 = time.perf_counter()
        preds = model.predict([t.user for t in conv.turns])
        res = ConversationResult(conv)
        for i, (turn, p) in enumerate(zip(conv.turns, preds, strict=True)):
            got = OOS if p.fallback else p.intent
            if got != turn.intent:
                want = "the fallback" if turn.intent == OOS else turn.intent
                res.failures.append(f"turn {i + 1} {turn.user!r}: expected {want}, got "
                                    f"{'the fallback' if got == OOS else got} (confidence {p.confidence:.2f})")
                continue
            if turn.reply_contains:
                reply = model.reply(p, f"{conv.name}#{i + 1}")
                if turn.reply_contains.lower() not in reply.lower():
                    res.failures.append(f"turn {i + 1} {turn.user!r}: reply does not contain "
                                        f"{turn.reply_contains!r}: {reply!r}")
        res.seconds = time.perf_counter() - t0
        results.append(res)
    return results


def write_junit(results: Sequence[ConversationResult], path: Path | str, suite: str = "conversations") -> Path:
    """JUnit XML: one test case per conversation, named after the file it came from."""
    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures),
                       errors="0", time=f"{sum(r.seconds for r in results):.4f}")
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{Path(r.conversation.source).stem}",
                           name=r.conversation.name, time=f"{r.seconds:.4f}")
        if r.failures:
            fail = ET.SubElement(tc, "failure", message=r.failures[0])
            fail.text = "\n".join(r.failures)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out
