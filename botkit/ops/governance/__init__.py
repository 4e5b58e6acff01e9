"""Who may put which model in front of customers, on what evidence, and a record nobody can quietly rewrite.

Four pieces, one package; each module imports only what it needs (audit stays on its own):

* :class:`AuditLog` (``audit``): an append-only JSON Lines file whose entries are hash-chained, so an
  edited, deleted, reordered or truncated entry is found by :meth:`AuditLog.verify`.
  Appends take an ``fcntl`` lock, so several processes (CLI, retraining job) can write it.
* :class:`Policy` and :func:`decide` (``policy``): the promotion rules from one YAML file, checked on the
  candidate AND the current production model, on the same test set, so a regression is a
  fact rather than a comparison of numbers measured on different data.
* :func:`promote` / :func:`rollback` (``promotion``): the only stage changes that leave a trace.
* :func:`model_card` (``cards``) and :func:`apply_retention` (``retention``): what a reviewer reads, and how old user
  text stops being kept.

The chain is keyed (HMAC-SHA256, key apart from the log): a consistent rewrite needs the key.
A keyed chain still cannot show that entries were cut off at the *end* on a line boundary: keep
:meth:`AuditLog.head` somewhere else (``botkit audit anchor``) and pass it to ``verify(anchor=...)``.
"""

from __future__ import annotations

from botkit.ops.governance.audit import ACTIONS, GENESIS, AuditError, AuditLog, GovernanceError, format_log
from botkit.ops.governance.cards import model_card, write_card
from botkit.ops.governance.policy import DEFAULT_POLICY, Decision, Policy, RuleResult, decide
from botkit.ops.governance.promotion import change_stage, promote, record_training, rollback
from botkit.ops.governance.retention import RETENTION_MODES, apply_retention

__all__ = [
    "ACTIONS",
    "DEFAULT_POLICY",
    "GENESIS",
    "RETENTION_MODES",
    "AuditError",
    "AuditLog",
    "Decision",
    "GovernanceError",
    "Policy",
    "RuleResult",
    "apply_retention",
    "change_stage",
    "decide",
    "format_log",
    "model_card",
    "promote",
    "record_training",
    "rollback",
    "write_card",
]
