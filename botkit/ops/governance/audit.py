"""The audit log: append-only JSON Lines, hash-chained, so an edited, deleted or reordered entry is found.

Appends take an ``fcntl`` lock, so several processes (CLI, retraining job) can write it.

The chain is *keyed*: each entry's hash is HMAC-SHA256 under the audit key
(``botkit.core.keys``, ``BOTKIT_AUDIT_KEY_FILE``; in Kubernetes a Secret), which lives apart from
the log. With a plain SHA-256 chain whoever can write the file can rewrite it consistently from
the first entry; without the key every recomputed hash is wrong and ``verify`` names the entry.
What a key cannot show is entries cut off at the *end* on a line boundary, or a rewrite by
someone who holds the key: keep :meth:`AuditLog.head` somewhere else (``botkit audit anchor``:
a CI artefact, a ticket) and pass it to ``verify(anchor=...)`` (``botkit audit verify --anchor``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botkit.core import keys
from botkit.core.config import settings

if TYPE_CHECKING:
    pass

__all__ = ["ACTIONS", "GENESIS", "AuditError", "AuditLog", "GovernanceError", "format_log"]

ACTIONS = ("train", "evaluate", "promote", "reject", "rollback", "data_import", "policy_change", "retention",
           "rollout", "canary", "stage_change")
GENESIS = "0" * 64
_SHA256 = re.compile(r"(sha256:)?[0-9a-f]{64}")


class GovernanceError(RuntimeError):
    """A promotion, rollback or retention run that cannot go ahead; the message says why."""


class AuditError(GovernanceError):
    """The audit log cannot be appended to or read as a log."""


# ------------------------------------------------------------------------------------- audit log


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _entry_hash(entry: dict, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the entry without its hash, under the audit key (the configured one by default)."""
    body = _canonical({k: v for k, v in entry.items() if k != "hash"}).encode()
    return hmac.new(key if key is not None else keys.key("audit"), body, hashlib.sha256).hexdigest()


def _who(explicit: str | None) -> str:
    if explicit and explicit.strip():
        return explicit.strip()
    return settings.from_env().os_user  # BOTKIT_USER, else the OS user


def _jsonable(value: Any) -> Any:
    """What ``value`` becomes after a JSON round trip: hashed and stored forms must be identical."""
    return json.loads(json.dumps(value, default=str, allow_nan=False))


def _valid_entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("seq"), int) and not isinstance(entry["seq"], bool)
            and isinstance(entry.get("hash"), str) and isinstance(entry.get("prev_hash"), str))


class AuditLog:
    """Append-only, hash-chained JSON Lines: each entry's hash covers its content and the previous hash."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, key: bytes | None = None) -> None:
        self.path = Path(path) if path is not None else settings.audit_path
        self._key = key  # None: the configured audit key, read when first needed

    def record(self, action: str, *, who: str | None = None, subject: str, details: dict | None = None,
               artefacts: dict[str, str] | None = None) -> dict:
        """Append one entry and return it; raises :class:`AuditError` if the log's tail is damaged.

        Appending after a partial last line would chain onto garbage, so that is refused: run
        :meth:`verify` and repair (or archive) the file first.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}: expected one of {', '.join(ACTIONS)}")
        if not isinstance(subject, str) or not subject:
            raise ValueError("an audit entry needs a subject (a model tag, data set or store)")
        artefacts = dict(artefacts or {})
        for name, digest in artefacts.items():
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise ValueError(f"artefact {name!r}: expected a sha256 hex digest, got {digest!r}")
        body = {"who": _who(who), "action": action, "subject": subject,
                "details": _jsonable(details or {}), "artefacts": artefacts}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close(); held while we read the tail and write
            last = self._tail(fd)
            entry = {"seq": last["seq"] + 1 if last else 1,
                     "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                     **body, "prev_hash": last["hash"] if last else GENESIS}
            entry["hash"] = _entry_hash(entry, self._key)
            data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            view = memoryview(data)
            while view:  # O_APPEND + the lock: even a short write continues contiguously
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def _tail(self, fd: int) -> dict | None:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        chunk, data = 4096, b""
        while True:
            start = max(0, size - chunk)
            data = os.pread(fd, size - start, start)
            if not data.endswith(b"\n"):
                raise AuditError(f"{self.path}: the last line is incomplete (interrupted write or truncated "
                                 "file); refusing to append. Run `botkit audit verify`.")
            cut = data.rfind(b"\n", 0, len(data) - 1)
            if cut >= 0 or start == 0:
                break
            chunk *= 4
        try:
            entry = json.loads(data[cut + 1:])
        except json.JSONDecodeError:
            entry = None
        if not _valid_entry(entry):
            raise AuditError(f"{self.path}: the last line is not an audit entry; refusing to append. "
                             "Run `botkit audit verify`.")
        return entry

    def entries(self) -> list[dict]:
        """Every readable entry in file order; damaged lines are skipped (``verify`` reports them)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_bytes().splitlines():
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if _valid_entry(entry):
                out.append(entry)
        return out

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry, (0, GENESIS) when empty: keep it elsewhere as an anchor."""
        entries = self.entries()
        return (entries[-1]["seq"], entries[-1]["hash"]) if entries else (0, GENESIS)

    def verify(self, *, anchor: tuple[int, str] | None = None) -> list[str]:
        """Every problem found, one readable line each, naming the seq and line; empty = intact.

        Finds edited entries (hash mismatch; an edit with a recomputed hash breaks the next
        entry's ``prev_hash``), deleted entries (seq gap), reordered or duplicated entries,
        a corrupt line and a truncated last line. ``anchor`` (a former :meth:`head`) also
        catches entries cut off at the end and a log rewritten from scratch.
        """
        if not self.path.exists():
            return [f"anchor seq {anchor[0]}: the log {self.path} does not exist"] if anchor and anchor[0] else []
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        cut_short = bool(raw) and not raw.endswith(b"\n")
        if not cut_short:
            lines = lines[:-1]
        problems: list[str] = []
        parsed: list[tuple[int, dict]] = []
        for lineno, line in enumerate(lines, 1):
            last = lineno == len(lines)
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                entry = None
            if not _valid_entry(entry):
                if last and cut_short:
                    problems.append(f"line {lineno}: truncated last line ({len(line)} bytes, no newline): "
                                    "an interrupted write or a cut file")
                else:
                    problems.append(f"line {lineno}: not a valid audit entry (corrupted or edited by hand)")
                continue
            seq = entry["seq"]
            if last and cut_short:
                problems.append(f"seq {seq} (line {lineno}): the last line has no newline: the file was truncated")
            if not hmac.compare_digest(entry["hash"], _entry_hash(entry, self._key)):
                # Also what an entry rewritten without the audit key looks like.
                problems.append(f"seq {seq} (line {lineno}): hash does not match the content: the entry was edited")
            parsed.append((lineno, entry))

        for (line_a, a), (lineno, b) in pairwise(parsed):
            if b["seq"] < a["seq"]:
                problems.append(f"seq {b['seq']} (line {lineno}) comes after seq {a['seq']}: entries were reordered")
            elif b["seq"] == a["seq"]:
                problems.append(f"seq {b['seq']} appears twice (line {line_a} and line {lineno}): "
                                "an entry was duplicated")

        prev_seq, prev_hash = 0, GENESIS
        for lineno, entry in sorted(parsed, key=lambda p: p[1]["seq"]):
            seq = entry["seq"]
            if seq == prev_seq:
                continue  # a duplicate, reported above
            if seq > prev_seq + 1:
                missing = f"seq {prev_seq + 1}" if seq == prev_seq + 2 else f"seq {prev_seq + 1}-{seq - 1}"
                where = "at the start of the log" if prev_seq == 0 else f"between seq {prev_seq} and seq {seq}"
                problems.append(f"{missing} missing {where} (before line {lineno}): entries were deleted")
            elif entry["prev_hash"] != prev_hash:
                before = f"seq {prev_seq}" if prev_seq else "the genesis hash"
                problems.append(f"seq {seq} (line {lineno}): prev_hash does not match the hash of {before}: "
                                f"{before} was altered or replaced")
            prev_seq, prev_hash = seq, entry["hash"]

        if anchor and anchor[0]:
            found = [e for _, e in parsed if e["seq"] == anchor[0]]
            if not found:
                problems.append(f"anchor seq {anchor[0]} is not in the log (last seq {prev_seq}): "
                                "entries were cut off the end")
            elif found[0]["hash"] != anchor[1]:
                problems.append(f"seq {anchor[0]}: hash differs from the anchor: the log was rewritten")
        return problems


def _summary(entry: dict, width: int = 72) -> str:
    """``key=value`` for the scalar details that say something the other columns do not."""
    parts: list[str] = []
    shown = {entry.get("subject")}
    for key, value in (entry.get("details") or {}).items():
        if key == "rules" and isinstance(value, list):
            failed = [r.get("name") for r in value if isinstance(r, dict) and not r.get("passed")]
            parts.append(f"failed={','.join(failed)}" if failed else "rules=all passed")
        elif isinstance(value, dict | list) or value is None or value is False or value == "" or value in shown:
            continue
        elif key != "approved":  # the action (promote/reject) says it
            shown.add(value)
            text = str(value)
            parts.append(f"{key}={text[:19] if text.startswith('sha256:') else text}")
    text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_log(entries: Iterable[dict]) -> str:
    """A fixed-width table a person can scan: seq, time, who, action, subject, details."""
    rows = [(str(e.get("seq", "?")), str(e.get("time", ""))[:19].replace("T", " "), str(e.get("who", "")),
             str(e.get("action", "")), str(e.get("subject", "")), _summary(e))
            for e in entries]
    header = ("seq", "time (UTC)", "who", "action", "subject", "details")
    if not rows:
        return "(the audit log is empty)"
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r).rstrip() for r in rows]
    return "\n".join(lines)


def _audit(audit: AuditLog | str | os.PathLike[str] | None) -> AuditLog:
    return audit if isinstance(audit, AuditLog) else AuditLog(audit)

