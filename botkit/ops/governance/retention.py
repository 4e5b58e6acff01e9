"""Retention: old user text in the event log is scrubbed (redacted again, or dropped), and the run recorded."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botkit.serving.events import EventStore

from botkit.ops.governance.audit import AuditLog, GovernanceError, _audit

__all__ = ["RETENTION_MODES", "apply_retention"]

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

