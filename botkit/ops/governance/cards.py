"""Model cards: what a reviewer reads before a model meets customers (metrics, lineage, decisions, limits)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from botkit.ops.governance.audit import AuditLog, _audit
from botkit.ops.governance.policy import _HEADLINE

__all__ = ["model_card", "write_card"]

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

