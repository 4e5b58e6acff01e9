"""Promotion rules from one YAML file, checked on the candidate AND production, on the same test set.

So a regression is a fact rather than a comparison of numbers measured on different data.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from botkit.core.config import PACKAGE_DIR, settings
from botkit.core.data import Dataset, load

if TYPE_CHECKING:
    pass

from botkit.ops.governance.audit import GovernanceError, _canonical

__all__ = ["DEFAULT_POLICY", "LATENCY_REPEATS", "REGRESSION_METRICS", "Decision", "Policy", "RuleResult", "decide"]

DEFAULT_POLICY = PACKAGE_DIR / "policy.yaml"
# Metrics the regression rule compares with production (absolute drop, same test set).
REGRESSION_METRICS = ("in_scope_accuracy", "oos_recall", "macro_f1")
_HEADLINE = ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
# Single-message predictions timed per model for the latency rule (p95 of these).
LATENCY_REPEATS = 200


# ----------------------------------------------------------------------------------------- policy


_Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _PolicyFile(BaseModel):
    """The policy YAML's schema: every key required (null switches a rule off), nothing else allowed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    min_in_scope_accuracy: _Fraction | None
    min_oos_recall: _Fraction | None
    max_regression: _Fraction | None
    max_p95_latency_ms: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None
    require_reviewer: bool


def _policy_problem(exc: Any, doc: dict, keys: Sequence[str]) -> str:
    """The first problem pydantic found, in one line a policy author can act on."""
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; expected {', '.join(keys)}"
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    if missing:
        return f"missing key(s) {', '.join(missing)} (use null to switch a rule off)"
    key = str(errors[0]["loc"][0])
    value = doc.get(key)
    if key == "require_reviewer":
        return "require_reviewer must be true or false"
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return (f"max_p95_latency_ms must be positive, got {value}" if key == "max_p95_latency_ms"
                else f"{key} must be between 0 and 1, got {value}")
    return f"{key} must be a number or null, got {value!r}"


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
        from pydantic import ValidationError

        where = source or "policy"
        if not isinstance(doc, dict):
            raise GovernanceError(f"{where}: expected a mapping of rule → value")
        try:
            rules = _PolicyFile.model_validate(doc)
        except ValidationError as exc:
            raise GovernanceError(f"{where}: {_policy_problem(exc, doc, cls._KEYS)}") from None
        return cls(**rules.model_dump(), source=source)

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

