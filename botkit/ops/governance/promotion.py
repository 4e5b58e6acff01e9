"""Promote and roll back: the only stage changes, each one leaving a trace in the audit log."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from botkit.core.config import settings
from botkit.core.data import Dataset

if TYPE_CHECKING:
    pass

from botkit.ops.governance.audit import AuditLog, GovernanceError, _audit
from botkit.ops.governance.policy import Decision, Policy, _production_tag, decide

__all__ = ["change_stage", "promote", "record_training", "rollback"]

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


def change_stage(tag: str, stage: str, *, who: str | None = None, reason: str = "",
                 audit: AuditLog | str | os.PathLike[str] | None = None) -> str | None:
    """Set a model's stage directly (``botkit train --stage production``, ``botkit run``), recorded as
    ``stage_change`` with the model's hashes and the model it displaced; returns that model's tag."""
    from botkit.core.registry import get_info, resolve_tag, set_stage

    resolved = resolve_tag(tag)
    info = get_info(resolved)
    previous = set_stage(resolved, stage)
    _audit(audit).record("stage_change", who=who, subject=resolved, artefacts=_artefacts(info), details={
        "stage": stage, "from_stage": info["stage"], "displaced": previous, "reason": reason})
    return previous


def record_training(tag: str, *, who: str | None = None, data: Dataset | None = None, report_dir: str = "",
                    audit: AuditLog | str | os.PathLike[str] | None = None) -> dict:
    """The ``train`` entry for a freshly stored model: data fingerprint, parameters, metrics, hashes."""
    from botkit.core.registry import get_info

    info = get_info(tag)
    meta = info["metadata"]
    return _audit(audit).record("train", who=who, subject=tag, artefacts=_artefacts(info), details={
        "stage": info["stage"], "parent": meta.get("parent"), "data_name": data.name if data else meta.get("data"),
        "data_fingerprint": meta.get("data_fingerprint"), "params": meta.get("params"),
        "metrics": meta.get("metrics"), "report_dir": report_dir})


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

