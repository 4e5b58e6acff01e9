"""Who may put which model in front of customers, on what evidence, and a record nobody can quietly rewrite.

Four pieces, one module, because each needs the others:

* :class:`AuditLog`: an append-only JSON Lines file whose entries are hash-chained, so an
  edited, deleted, reordered or truncated entry is found by :meth:`AuditLog.verify`.
  Appends take an ``fcntl`` lock, so several processes (CLI, retraining job) can write it.
* :class:`Policy` and :func:`decide`: the promotion rules from one YAML file, checked on the
  candidate AND the current production model, on the same test set, so a regression is a
  fact rather than a comparison of numbers measured on different data.
* :func:`promote` / :func:`rollback`: the only stage changes that leave a trace.
* :func:`model_card` and :func:`apply_retention`: what a reviewer reads, and how old user
  text stops being kept.

Limitation: a hash chain cannot show that entries were cut off at the *end* on a line
boundary, or that the whole file was rewritten consistently. Keep :meth:`AuditLog.head`
somewhere else (a CI artefact, a ticket) and pass it to ``verify(anchor=...)`` to catch that.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import hashlib
import json
import math
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botkit.core.config import PACKAGE_DIR, settings
from botkit.core.data import Dataset, load

if TYPE_CHECKING:
    from botkit.serving.events import EventStore

__all__ = [
    "ACTIONS",
    "DEFAULT_POLICY",
    "GENESIS",
    "AuditError",
    "AuditLog",
    "Decision",
    "GovernanceError",
    "Policy",
    "RuleResult",
    "apply_retention",
    "decide",
    "format_log",
    "model_card",
    "promote",
    "rollback",
    "write_card",
]

ACTIONS = ("train", "evaluate", "promote", "reject", "rollback", "data_import", "policy_change", "retention")
GENESIS = "0" * 64
DEFAULT_POLICY = PACKAGE_DIR / "policy.yaml"
# Metrics the regression rule compares with production (absolute drop, same test set).
REGRESSION_METRICS = ("in_scope_accuracy", "oos_recall", "macro_f1")
_HEADLINE = ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
_SHA256 = re.compile(r"(sha256:)?[0-9a-f]{64}")
# Single-message predictions timed per model for the latency rule (p95 of these).
LATENCY_REPEATS = 200


class GovernanceError(RuntimeError):
    """A promotion, rollback or retention run that cannot go ahead; the message says why."""


class AuditError(GovernanceError):
    """The audit log cannot be appended to or read as a log."""


# ------------------------------------------------------------------------------------- audit log


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _entry_hash(entry: dict) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"}).encode()).hexdigest()


def _who(explicit: str | None) -> str:
    if explicit and explicit.strip():
        return explicit.strip()
    env = os.environ.get("BOTKIT_USER", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid:{os.getuid()}"


def _jsonable(value: Any) -> Any:
    """What ``value`` becomes after a JSON round trip: hashed and stored forms must be identical."""
    return json.loads(json.dumps(value, default=str, allow_nan=False))


def _valid_entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("seq"), int) and not isinstance(entry["seq"], bool)
            and isinstance(entry.get("hash"), str) and isinstance(entry.get("prev_hash"), str))


class AuditLog:
    """Append-only, hash-chained JSON Lines: each entry's hash covers its content and the previous hash."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else settings.audit_path

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
            entry["hash"] = _entry_hash(entry)
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
            if entry["hash"] != _entry_hash(entry):
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


# ----------------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Policy:
    """Promotion rules; ``None`` switches a rule off. Load from YAML so changes are reviewed like code."""

    min_in_scope_accuracy: float | None
    min_oos_recall: float | None
    max_regression: float | None
    max_p95_latency_ms: float | None
    require_reviewer: bool
    source: str = field(default="", compare=False)

    _FRACTIONS = ("min_in_scope_accuracy", "min_oos_recall", "max_regression")
    _KEYS = (*_FRACTIONS, "max_p95_latency_ms", "require_reviewer")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Policy:
        """The policy file (default: the one shipped in the package)."""
        import yaml

        p = Path(path) if path is not None else DEFAULT_POLICY
        try:
            doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GovernanceError(f"{p}: no such policy file") from None
        except yaml.YAMLError as exc:
            raise GovernanceError(f"{p}: not valid YAML ({exc})") from None
        return cls.from_dict(doc, source=str(p))

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "") -> Policy:
        """Strict: every key present, no unknown key (a typo must not silently disable a rule)."""
        where = source or "policy"
        if not isinstance(doc, dict):
            raise GovernanceError(f"{where}: expected a mapping of rule → value")
        unknown = sorted(set(doc) - set(cls._KEYS))
        missing = [k for k in cls._KEYS if k not in doc]
        if unknown:
            raise GovernanceError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(cls._KEYS)}")
        if missing:
            raise GovernanceError(f"{where}: missing key(s) {', '.join(missing)} (use null to switch a rule off)")
        for key in cls._KEYS[:-1]:
            value = doc[key]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise GovernanceError(f"{where}: {key} must be a number or null, got {value!r}")
            if key in cls._FRACTIONS and not 0 <= value <= 1:
                raise GovernanceError(f"{where}: {key} must be between 0 and 1, got {value}")
            if key == "max_p95_latency_ms" and value <= 0:
                raise GovernanceError(f"{where}: max_p95_latency_ms must be positive, got {value}")
        if not isinstance(doc["require_reviewer"], bool):
            raise GovernanceError(f"{where}: require_reviewer must be true or false")
        return cls(**{k: (float(doc[k]) if k != "require_reviewer" and doc[k] is not None else doc[k])
                      for k in cls._KEYS}, source=source)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._KEYS}

    @property
    def sha256(self) -> str:
        """Identity of the rule values (not the file's comments): what the audit log records."""
        return hashlib.sha256(_canonical(self.to_dict()).encode()).hexdigest()


@dataclass(frozen=True)
class RuleResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    """A policy verdict with its evidence; ``approved`` means the stage may change (or did).

    ``forced`` is true when :func:`promote` went ahead although metric rules failed.
    """

    approved: bool
    rules: list[RuleResult]
    candidate_tag: str
    production_tag: str | None
    candidate_metrics: dict
    production_metrics: dict | None
    reviewer: str | None
    policy: Policy
    test_set: dict
    forced: bool = False

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    def explain(self) -> str:
        """Verdict plus one line per rule, failed ones saying why: what the CLI prints."""
        verdict = "APPROVED" + (" (forced over failed rules)" if self.forced else "") if self.approved else "REJECTED"
        against = f" vs production {self.production_tag}" if self.production_tag else " (no production model)"
        lines = [f"{verdict}: {self.candidate_tag}{against} on {self.test_set.get('name')} test split "
                 f"({self.test_set.get('n')} utterances)"]
        lines += [f"  {'PASS' if r.passed else 'FAIL'}  {r.name}: {r.detail}" for r in self.rules]
        return "\n".join(lines)

    def summary(self) -> dict:
        """JSON-ready digest (headline metrics, not per-intent tables) for the audit log and ``--json``."""
        return {"reviewer": self.reviewer,
                "rules": [{"name": r.name, "passed": r.passed, "detail": r.detail} for r in self.rules],
                "approved": self.approved, "forced": self.forced, "candidate": self.candidate_tag,
                "production": self.production_tag,
                "candidate_metrics": _headline(self.candidate_metrics),
                "production_metrics": _headline(self.production_metrics) if self.production_metrics else None,
                "policy": {"sha256": self.policy.sha256, "source": self.policy.source, **self.policy.to_dict()},
                "test_set": self.test_set}


def _headline(metrics: dict) -> dict:
    out = {k: metrics.get(k) for k in _HEADLINE}
    out["single_p95_ms"] = (metrics.get("latency") or {}).get("single_p95_ms")
    return out


def _production_tag(name: str) -> str | None:
    from botkit.core.registry import list_models

    prod = [m for m in list_models(name) if m["stage"] == "production"]
    return prod[-1]["tag"] if prod else None


def _test_dataset(test_data: Dataset | str | os.PathLike[str] | None) -> Dataset:
    if isinstance(test_data, Dataset):
        return test_data
    return load(test_data, seed=settings.seed)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _rules(policy: Policy, reviewer: str | None, cand: dict, prod: dict | None, prod_tag: str | None,
           prod_error: str | None) -> list[RuleResult]:
    rules = []
    if policy.require_reviewer:
        rules.append(RuleResult("reviewer", bool(reviewer),
                                f"reviewed by {reviewer}" if reviewer else
                                "the policy requires a named reviewer and none was given"))
    for key, floor in (("in_scope_accuracy", policy.min_in_scope_accuracy), ("oos_recall", policy.min_oos_recall)):
        if floor is None:
            continue
        value = cand.get(key)
        if value is None:
            rules.append(RuleResult(f"min_{key}", False, f"{key} cannot be measured on this test set "
                                    "(no examples of that kind); the policy requires it"))
        else:
            ok = value >= floor
            rules.append(RuleResult(f"min_{key}", ok, f"{key} {_f(value)} {'meets' if ok else 'is below'} "
                                    f"the minimum {_f(floor)}"))
    if policy.max_regression is not None:
        if prod_error:
            rules.append(RuleResult("max_regression", False, prod_error))
        elif prod is None:
            rules.append(RuleResult("max_regression", True, "no production model yet: nothing to regress from"))
        else:
            drops = []
            for key in REGRESSION_METRICS:
                new, old = cand.get(key), prod.get(key)
                if new is not None and old is not None and old - new > policy.max_regression + 1e-9:
                    drops.append(f"{key} dropped {old - new:.4f} ({_f(old)} → {_f(new)})")
            allowed = f"more than the allowed {_f(policy.max_regression)} vs production {prod_tag}"
            rules.append(RuleResult("max_regression", not drops, "; ".join(drops) + f": {allowed}" if drops else
                                    f"no metric of {', '.join(REGRESSION_METRICS)} dropped {allowed}"))
    if policy.max_p95_latency_ms is not None:
        p95 = (cand.get("latency") or {}).get("single_p95_ms")
        if p95 is None:
            rules.append(RuleResult("max_p95_latency_ms", False, "latency was not measured"))
        else:
            ok = p95 <= policy.max_p95_latency_ms
            rules.append(RuleResult("max_p95_latency_ms", ok, f"single-message p95 {p95:.2f} ms "
                                    f"{'is within' if ok else 'exceeds'} the limit {_f(policy.max_p95_latency_ms)} ms"))
    return rules


def _measure(model: Any, examples: Sequence[tuple[str, str]]) -> dict:
    from botkit.core.evaluate import evaluate, latency

    metrics = evaluate(model, examples, measure_latency=False).metrics
    metrics["latency"] = latency(model, [t for t, _ in examples], repeats=LATENCY_REPEATS)
    return metrics


def decide(candidate_tag: str, *, reviewer: str | None, policy: Policy | None = None,
           test_data: Dataset | str | os.PathLike[str] | None = None) -> Decision:
    """Evaluate candidate and current production on the same test split and apply the policy.

    No side effects: nothing is promoted or recorded (see :func:`promote`).
    """
    from botkit.core.registry import RegistryError, load_model, resolve_tag

    policy = policy or Policy.load()
    reviewer = reviewer.strip() if reviewer and reviewer.strip() else None
    tag = resolve_tag(candidate_tag)
    ds = _test_dataset(test_data)
    if not ds.test:
        raise GovernanceError(f"data set {ds.name!r} has no test split to decide on")
    cand = _measure(load_model(tag).model, ds.test)
    prod_tag = _production_tag(tag.split(":")[0])
    prod, prod_error = None, None
    if prod_tag:
        try:
            prod = cand if prod_tag == tag else _measure(load_model(prod_tag).model, ds.test)
        except RegistryError as exc:
            prod_error = f"the production model could not be loaded for comparison ({exc})"
    rules = _rules(policy, reviewer, cand, prod, prod_tag, prod_error)
    test_set = {"name": ds.name, "fingerprint": ds.fingerprint(), "n": len(ds.test)}
    return Decision(all(r.passed for r in rules), rules, tag, prod_tag, cand, prod, reviewer, policy, test_set)


# ------------------------------------------------------------------------------ promote / rollback


def _artefacts(info: dict) -> dict[str, str]:
    return dict(info["metadata"].get("artifact_sha256") or {})


def _note_policy(log: AuditLog, policy: Policy, who: str | None) -> None:
    """Record ``policy_change`` when this policy differs from the last one the log has seen."""
    last = None
    for entry in reversed(log.entries()):
        if entry.get("action") in ("promote", "reject", "policy_change"):
            last = (entry.get("details") or {}).get("policy", {}).get("sha256")
            if last:
                break
    if last != policy.sha256:
        log.record("policy_change", who=who, subject=policy.source or "policy",
                   details={"policy": {"sha256": policy.sha256, "source": policy.source, **policy.to_dict()},
                            "previous_sha256": last})


def promote(tag: str, *, reviewer: str | None, policy: Policy | None = None, force: bool = False,
            who: str | None = None, test_data: Dataset | str | os.PathLike[str] | None = None,
            audit: AuditLog | str | os.PathLike[str] | None = None) -> Decision:
    """Apply the policy; on approval make ``tag`` production, recording ``promote`` or ``reject``.

    ``force`` promotes over failed metric, regression and latency rules (recorded as forced);
    it never overrides a required reviewer, who is the accountable second person.
    """
    from botkit.core.registry import get_info, resolve_tag, set_stage

    log = _audit(audit)
    policy = policy or Policy.load()
    resolved = resolve_tag(tag)
    info = get_info(resolved)
    if info["stage"] == "production":
        raise GovernanceError(f"{resolved} is already in production")
    decision = decide(resolved, reviewer=reviewer, policy=policy, test_data=test_data)
    if not decision.approved and force and all(r.passed for r in decision.rules if r.name == "reviewer"):
        decision = replace(decision, approved=True, forced=True)
    _note_policy(log, policy, who)
    details = decision.summary()
    if decision.approved:
        previous = set_stage(resolved, "production")
        details = {"previous": previous, **details}
        log.record("promote", who=who, subject=resolved, details=details, artefacts=_artefacts(info))
    else:
        log.record("reject", who=who, subject=resolved, details=details, artefacts=_artefacts(info))
    return decision


def _rollback_target(log: AuditLog, name: str, current: str) -> str | None:
    """Replay this model name's promotions and rollbacks: the production model before ``current``."""
    stack: list[str] = []
    for entry in log.entries():
        subject, details = str(entry.get("subject", "")), entry.get("details") or {}
        if not subject.startswith(name + ":"):
            continue
        if entry.get("action") == "promote":
            previous = details.get("previous")
            if previous and (not stack or stack[-1] != previous):
                stack.append(previous)  # promoted outside the log (e.g. `botkit run`)
            stack.append(subject)
        elif entry.get("action") == "rollback":
            while stack and stack[-1] != subject:
                stack.pop()
            if not stack:
                stack.append(subject)
    if len(stack) >= 2 and stack[-1] == current:
        return stack[-2]
    return None


def rollback(*, reason: str, who: str | None = None, name: str | None = None,
             audit: AuditLog | str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """Put the previous production model back; returns ``(restored_tag, demoted_tag)``.

    "Previous" comes from the audit log's promotions (rollbacks pop them, so two rollbacks go
    two steps back); without a usable entry, the newest archived model older than the current
    one. The restored model's artefacts are verified by loading it before any label changes.
    """
    from botkit.core.registry import RegistryError, get_info, list_models, load_model, set_stage

    if not reason or not reason.strip():
        raise GovernanceError("a rollback needs a reason (it goes into the audit log)")
    log = _audit(audit)
    name = name or settings.model_name
    current = _production_tag(name)
    if current is None:
        raise GovernanceError(f"no production model named {name!r}: nothing to roll back")
    target = _rollback_target(log, name, current)
    if target is not None:
        try:
            get_info(target)
        except RegistryError:
            target = None  # deleted from the store since; fall back
    if target is None:
        models = list_models(name)  # oldest first, by exact creation time
        position = next(i for i, m in enumerate(models) if m["tag"] == current)
        older = [m for m in models[:position] if m["stage"] == "archived"]
        if not older:
            raise GovernanceError(f"no earlier production model of {name!r} to roll back to")
        target = older[-1]["tag"]
    info = get_info(target)
    load_model(target)  # refuses tampered artefacts before anything changes
    demoted = set_stage(target, "production") or current
    log.record("rollback", who=who, subject=target,
               details={"restored": target, "demoted": demoted, "reason": reason.strip()},
               artefacts=_artefacts(info))
    return target, demoted


# ------------------------------------------------------------------------------------ model card


def _last(log: AuditLog, action: str, subject: str) -> dict | None:
    for entry in reversed(log.entries()):
        if entry.get("action") == action and entry.get("subject") == subject:
            return entry
    return None


def _lineage(tag: str) -> list[tuple[str, dict | None]]:
    from botkit.core.registry import RegistryError, get_info

    chain: list[tuple[str, dict | None]] = []
    seen: set[str] = set()
    current: str | None = tag
    while current and current not in seen:
        seen.add(current)
        try:
            info = get_info(current)
        except RegistryError:
            chain.append((current, None))
            break
        chain.append((current, info))
        current = info["metadata"].get("parent") or None
    return chain


_LIMITATIONS = (
    "**English only.** Trained and evaluated on English messages; other languages mostly fall "
    "back, and where they share spelling with English words they can be misrouted.",
    "**No semantics beyond the words seen.** TF-IDF n-grams know nothing of meaning: a synonym or "
    "paraphrase absent from training (\"reimbursement\" for \"refund\") carries signal only "
    "through shared characters, so such messages get low confidence or the wrong intent.",
    "**Word order and negation are mostly lost.** \"I do not want a refund\" looks like a refund "
    "request; sarcasm and conditionals are not understood.",
    "**Short inputs are unreliable.** One or two words (\"order\", \"help\") give few features; "
    "confidence is then poorly calibrated and the intent often ambiguous.",
    "**One intent per message, no conversation memory.** A message with two requests gets one "
    "answer; each message is classified without the turns before it.",
    "**Out-of-scope detection is learned from examples and a threshold.** Off-topic requests "
    "that use shop vocabulary (\"order a pizza\") can be answered as in-scope.",
    "**Calibration is tied to the validation data.** The fallback threshold and confidence "
    "temperature were fitted on the validation split; live traffic that drifts away from it "
    "shifts both accuracy and the fallback rate (watch the monitoring).",
    "**Redacted training text.** The service predicts on the raw message but stores it redacted, "
    "so examples learned from feedback carry placeholders (`<EMAIL>`, ...) where live messages "
    "carry the values: a small gap between training and serving for messages with PII.",
)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("n/a" if v is None else str(v) for v in r) + " |" for r in rows]
    return out


def model_card(tag: str, *, audit: AuditLog | str | os.PathLike[str] | None = None) -> str:
    """The Markdown a reviewer signs off: use, data, parameters, metrics, limits, owner, lineage, stage."""
    from botkit.core.evaluate import weakest_intents
    from botkit.core.registry import get_info, resolve_tag

    resolved = resolve_tag(tag)
    info = get_info(resolved)
    md, root = info["metadata"], Path(info["path"])
    log = _audit(audit)
    bot = json.loads((root / "bot.json").read_text()) if (root / "bot.json").exists() else {}
    metrics_file = root / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    intents = sorted(bot.get("replies", {}))
    threshold = md.get("threshold", bot.get("threshold"))
    sizes = md.get("data_sizes") or {}
    promotion = _last(log, "promote", resolved)
    reviewer = (promotion or {}).get("details", {}).get("reviewer") or "not reviewed"
    n_test = (sizes.get("test") or {}).get("in_scope", 0)
    per_intent_test = n_test // max(1, len(intents) or md.get("n_intents") or 1)

    lines = [f"# Model card: {resolved}", "",
             f"- **Stage:** {info['stage'] or 'none'}",
             f"- **Owner:** {md.get('owner', 'unknown')}",
             f"- **Reviewer:** {reviewer}" + (f" (promoted {promotion['time']} by {promotion['who']}, "
                                              f"audit seq {promotion['seq']})" if promotion else ""),
             f"- **Created:** {md.get('created_at', info['created'])}; botkit {md.get('botkit_version', '?')}, "
             f"git commit {md.get('git_commit', 'unknown')}", "",
             "## Intended use", "",
             f"Routes short English text messages from customers of the *{resolved.split(':')[0]}* bot to one "
             f"of {len(intents) or md.get('n_intents', '?')} intents and answers with one of that intent's canned "
             "replies. It is a first-line triage assistant: it does not take actions (refunds, cancellations), "
             "look up orders or generate free text, and a person must stay reachable (the handoff intent).", "",
             "Intents: " + (", ".join(f"`{i}`" for i in intents) or "n/a"), "",
             "## Out-of-scope behaviour and fallback", "",
             f"A message is answered only when the top class is an intent (not `oos`) **and** its confidence is "
             f"at least the threshold **{threshold}** (tuned on the validation split to maximise out-of-scope "
             "recall at a small cost in in-scope accuracy). Otherwise the bot gives one of "
             f"{len(bot.get('fallback_replies', [])) or 'its'} fallback replies asking the user to rephrase or "
             "offering a human agent. It never answers outside its intents' replies.", "",
             "## Data", "",
             f"- **Data set:** {md.get('data_name', '?')}",
             f"- **Fingerprint:** `{md.get('data_fingerprint', '?')}`", ""]
    lines += _table(("split", "in scope", "out of scope"),
                    ((s, v.get("in_scope"), v.get("oos")) for s, v in sizes.items()))
    lines += ["", "## Training parameters", ""]
    lines += _table(("parameter", "value"), sorted((md.get("params") or {}).items()))
    lines += ["", f"Training took {md.get('train_seconds', '?')} s.", "", "## Metrics (test split)", "",
              "Measured at training time on the test split of the data set above (`botkit models promote` "
              "re-measures candidate and production side by side on one test set).", ""]
    head = {**(md.get("metrics") or {}), **{k: metrics.get(k) for k in _HEADLINE if k in metrics}}
    latency = metrics.get("latency") or md.get("latency") or {}
    lines += _table(("metric", "value"), [*((k, head.get(k)) for k in _HEADLINE),
                                          *((f"latency {k}", v) for k, v in latency.items())])
    lines += ["", "Five weakest intents (F1 on the test split):", ""]
    if metrics.get("per_intent"):
        lines += _table(("intent", "F1", "support"),
                        ((k, f"{f1:.3f}", metrics["per_intent"][k]["support"]) for k, f1 in weakest_intents(metrics)))
    else:
        lines.append("(per-intent metrics were not stored with this model)")
    lines += ["", "## Known limitations", ""]
    lines += [f"- {t}" for t in _LIMITATIONS]
    lines.append(f"- **Small test set.** About {per_intent_test} test utterances per intent: a per-intent F1 "
                 "moves by several points with one error, so compare intents with care.")
    lines += ["", "## Lineage", ""]
    for i, (t, inf) in enumerate(_lineage(resolved)):
        label = "this model" if i == 0 else "parent" if i == 1 else f"ancestor {i}"
        if inf is None:
            lines.append(f"{i + 1}. `{t}` ({label}; no longer in the model store)")
        else:
            m = inf["metadata"]
            lines.append(f"{i + 1}. `{t}` ({label}; {inf['stage'] or 'no stage'}; data {m.get('data_name')} "
                         f"`{str(m.get('data_fingerprint', ''))[:19]}`; created {m.get('created_at', inf['created'])})")
    if not md.get("parent"):
        lines.append("")
        lines.append("Trained from scratch (no parent model).")
    lines += ["", "## Stage", "", f"Current stage: **{info['stage'] or 'none'}**. Stage changes go through "
              "`botkit models promote` / `botkit models rollback` and are recorded in the audit log."]
    return "\n".join(lines) + "\n"


def write_card(tag: str, out_dir: str | os.PathLike[str], *,
               audit: AuditLog | str | os.PathLike[str] | None = None) -> Path:
    """Write ``model_card_<name>_<version>.md`` into ``out_dir``; returns its path."""
    from botkit.core.registry import resolve_tag

    resolved = resolve_tag(tag)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"model_card_{resolved.replace(':', '_')}.md"
    path.write_text(model_card(resolved, audit=audit), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------- retention

RETENTION_MODES = ("redact", "drop")


def apply_retention(store: EventStore | str | os.PathLike[str], max_age_days: float, mode: str = "redact",
                    now: float | dt.datetime | None = None, *, who: str | None = None,
                    audit: AuditLog | str | os.PathLike[str] | None = None) -> int:
    """Scrub user text of events older than ``max_age_days``; returns how many events changed.

    ``drop`` replaces chat text and feedback comments with ""; ``redact`` runs them through
    today's :func:`botkit.core.redact.redact` again (rules improve; old text was redacted with old
    ones). The event store has no update API, so this edits the SQLite backend's ``events``
    table directly, with ``secure_delete`` on and a WAL checkpoint after, so the old bytes do
    not linger in free pages or the WAL. Redis streams cannot be edited in place: bound them
    with ``maxlen`` instead.
    """
    from botkit.core.redact import redact

    if mode not in RETENTION_MODES:
        raise ValueError(f"mode must be one of {', '.join(RETENTION_MODES)}, got {mode!r}")
    if not isinstance(max_age_days, int | float) or isinstance(max_age_days, bool) or max_age_days < 0:
        raise ValueError(f"max_age_days must be a non-negative number, got {max_age_days!r}")
    path = _sqlite_path(store)
    if not path.exists():
        raise GovernanceError(f"{path}: no event store there")
    now_ts = (now.timestamp() if isinstance(now, dt.datetime) else float(now) if now is not None
              else dt.datetime.now(dt.UTC).timestamp())
    cutoff = now_ts - max_age_days * 86400.0

    def scrub(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        return "" if mode == "drop" else redact(value)

    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA secure_delete = ON")  # overwrite the old record bytes, not just unlink them
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
            raise GovernanceError(f"{path}: not a botkit event store (no events table)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT id, payload FROM events WHERE ts < ?", (cutoff,)).fetchall()
            changed = 0
            for event_id, payload in rows:
                data = json.loads(payload)
                new = {**data, **{k: scrub(data[k]) for k in ("text", "comment") if k in data}}
                if new != data:
                    conn.execute("UPDATE events SET payload = ? WHERE id = ?",
                                 (json.dumps(new, separators=(",", ":"), ensure_ascii=False), event_id))
                    changed += 1
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        conn.close()
    _audit(audit).record("retention", who=who, subject=str(path), details={
        "mode": mode, "max_age_days": max_age_days,
        "cutoff": dt.datetime.fromtimestamp(cutoff, dt.UTC).isoformat(timespec="seconds"),
        "old_events": len(rows), "changed": changed, "wal_checkpointed": busy == 0})
    return changed


def _sqlite_path(store: Any) -> Path:
    from botkit.serving.events import SQLiteStore

    if isinstance(store, str | os.PathLike):
        return Path(store)
    if isinstance(store, SQLiteStore):
        return Path(store.path)
    raise GovernanceError(f"retention edits stored events in place, which only the SQLite backend allows "
                          f"(got {type(store).__name__}); bound a Redis stream with maxlen instead")
