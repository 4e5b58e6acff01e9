"""``botkit workshop feedback summarize``: the feedback form's answers as a Markdown report and a chart."""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from botkit.teaching.workshop.checks import _short

__all__ = ["FEEDBACK_COLUMNS", "FEEDBACK_QUESTIONS", "FeedbackError", "FeedbackSummary", "summarize_feedback"]

# ---------------------------------------------------------------------------------- feedback

FEEDBACK_QUESTIONS = ("pace", "clarity", "usefulness")
FEEDBACK_TEXT = ("what_worked", "what_to_change")
FEEDBACK_COLUMNS = ("timestamp", "block", "role", *FEEDBACK_QUESTIONS, *FEEDBACK_TEXT)
_REQUIRED = ("block", *FEEDBACK_QUESTIONS, *FEEDBACK_TEXT)


class FeedbackError(ValueError):
    """A feedback file that cannot be summarised; the message is one line naming the file and the problem."""


@dataclass
class FeedbackSummary:
    """Averages per block and question, counts, grouped comments, and the files written."""

    n_responses: int
    blocks: list[str]
    counts: dict[str, int]
    means: dict[str, dict[str, float | None]]
    sds: dict[str, dict[str, float | None]]
    overall: dict[str, float | None]
    roles: dict[str, int]
    comments: dict[str, dict[str, list[str]]]
    watch: list[str] = field(default_factory=list)
    markdown_path: Path | None = None
    png_path: Path | None = None


def _score(raw: str | None, path: Path, row: int, question: str) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None  # a skipped question is not an error
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise FeedbackError(f"{path}: row {row}: {question} must be a whole number from 1 to 5, got {text!r}") from None
    if not value.is_integer() or not 1 <= value <= 5:
        raise FeedbackError(f"{path}: row {row}: {question} must be a whole number from 1 to 5, got {text!r}")
    return value


def _read_feedback(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FeedbackError(f"{path}: no such file (export the form answers as CSV, with the header of "
                            "workshops/feedback_form_template.csv)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets add a BOM
            reader = csv.DictReader(fh)
            header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
            missing = [c for c in _REQUIRED if c not in header]
            if not header:
                raise FeedbackError(f"{path}: the file is empty (expected a header line: {','.join(FEEDBACK_COLUMNS)})")
            if missing:
                raise FeedbackError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)}); "
                                    "use the header of workshops/feedback_form_template.csv")
            rows = [{(k or "").strip().lower(): (v if isinstance(v, str) else "") for k, v in r.items()}
                    for r in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FeedbackError(f"{path}: not a readable UTF-8 CSV file ({_short(exc)})") from None
    rows = [r for r in rows if any((v or "").strip() for v in r.values())]
    if not rows:
        raise FeedbackError(f"{path}: the header is there but no answers")
    return rows


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return round(statistics.fmean(values), 2), round(statistics.stdev(values), 2) if len(values) > 1 else 0.0


def summarize_feedback(csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> FeedbackSummary:
    """Read the feedback answers, write ``feedback_summary.md`` and ``feedback_scores.png`` into ``out_dir``.

    Scores are 1-5 (pace: 3 = just right; clarity and usefulness: 5 = best); a blank score is
    a skipped question, not a zero. Blocks keep the order they first appear in (the agenda's).
    Raises :class:`FeedbackError` with one line for a missing file, missing columns or a bad score.
    """
    path = Path(csv_path)
    rows = _read_feedback(path)
    blocks: list[str] = []
    scores: dict[str, dict[str, list[float]]] = {}
    comments: dict[str, dict[str, list[str]]] = {}
    roles: Counter[str] = Counter()
    for i, r in enumerate(rows, start=2):  # row 1 is the header
        block = (r.get("block") or "").strip()
        if not block:
            raise FeedbackError(f"{path}: row {i}: the block is empty (which part of the workshop is this about?)")
        if block not in scores:
            blocks.append(block)
            scores[block] = {q: [] for q in FEEDBACK_QUESTIONS}
            comments[block] = {t: [] for t in FEEDBACK_TEXT}
        for q in FEEDBACK_QUESTIONS:
            value = _score(r.get(q), path, i, q)
            if value is not None:
                scores[block][q].append(value)
        for t in FEEDBACK_TEXT:
            text = " ".join((r.get(t) or "").split())
            if text:
                comments[block][t].append(text)
        roles[(r.get("role") or "").strip() or "not given"] += 1
    means = {b: {q: _mean_sd(scores[b][q])[0] for q in FEEDBACK_QUESTIONS} for b in blocks}
    sds = {b: {q: _mean_sd(scores[b][q])[1] for q in FEEDBACK_QUESTIONS} for b in blocks}
    overall = {q: _mean_sd([v for b in blocks for v in scores[b][q]])[0] for q in FEEDBACK_QUESTIONS}
    counts = {b: sum(1 for r in rows if (r.get("block") or "").strip() == b) for b in blocks}
    watch = []
    for b in blocks:
        pace, clarity, useful = (means[b][q] for q in FEEDBACK_QUESTIONS)
        if pace is not None and not 2.5 <= pace <= 3.5:
            watch.append(f"{b}: pace {pace:.1f} ({'too fast' if pace > 3.5 else 'too slow'})")
        for q, v in (("clarity", clarity), ("usefulness", useful)):
            if v is not None and v < 3.5:
                watch.append(f"{b}: {q} {v:.1f}")
    summary = FeedbackSummary(len(rows), blocks, counts, means, sds, overall, dict(roles.most_common()),
                              comments, watch)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary.png_path = _feedback_png(summary, out / "feedback_scores.png")
    summary.markdown_path = out / "feedback_summary.md"
    summary.markdown_path.write_text(_feedback_markdown(summary, path), encoding="utf-8")
    return summary


def _cell(mean: float | None, sd: float | None) -> str:
    return "–" if mean is None else f"{mean:.2f} ± {sd:.2f}"


def _feedback_markdown(s: FeedbackSummary, source: Path) -> str:
    lines = ["# Workshop feedback", "",
             f"{s.n_responses} answers from `{source.name}`, {len(s.blocks)} blocks. "
             "Roles: " + ", ".join(f"{k} {v}" for k, v in s.roles.items()) + ".", "",
             "Scores 1-5, mean ± standard deviation. **pace**: 1 = far too slow, 3 = just right, 5 = far too fast; "
             "**clarity** and **usefulness**: 5 = best. A blank score is a skipped question.", "",
             "| block | answers | pace | clarity | usefulness |", "|---|---:|---:|---:|---:|"]
    for b in s.blocks:
        lines.append(f"| {b} | {s.counts[b]} | " + " | ".join(_cell(s.means[b][q], s.sds[b][q])
                                                                  for q in FEEDBACK_QUESTIONS) + " |")
    lines.append(f"| **all blocks** | {s.n_responses} | " + " | ".join(
        "–" if s.overall[q] is None else f"{s.overall[q]:.2f}" for q in FEEDBACK_QUESTIONS) + " |")
    lines += ["", "## To look at before the next run", ""]
    lines += [f"- {w}" for w in s.watch] or ["- nothing: every block's pace is within 2.5-3.5 and clarity and "
                                             "usefulness are at least 3.5"]
    lines += ["", f"![mean scores per block]({s.png_path.name if s.png_path else 'feedback_scores.png'})", "",
              "## What people said, by block", ""]
    for b in s.blocks:
        lines += [f"### {b}", ""]
        for t, title in (("what_worked", "What worked"), ("what_to_change", "What to change")):
            said = s.comments[b][t]
            lines.append(f"**{title}** ({len(said)})")
            lines.append("")
            lines += [f"- {c}" for c in said] or ["- (nothing written)"]
            lines.append("")
    return "\n".join(lines)


def _feedback_png(s: FeedbackSummary, path: Path) -> Path:
    # The object API, not pyplot: no GUI backend is needed or changed (safe in a notebook and a CLI).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 1.4 * len(s.blocks) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(FEEDBACK_QUESTIONS)
    colors = ("#4f81bd", "#9bbb59", "#f79646")
    for k, (q, color) in enumerate(zip(FEEDBACK_QUESTIONS, colors, strict=True)):
        xs = [i + (k - 1) * width for i in range(len(s.blocks))]
        means = [s.means[b][q] if s.means[b][q] is not None else math.nan for b in s.blocks]
        errs = [s.sds[b][q] or 0.0 for b in s.blocks]
        ax.bar(xs, means, width, yerr=errs, capsize=3, color=color, label=q, error_kw={"elinewidth": 1})
    ax.axhline(3, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(s.blocks)), [b if len(b) <= 18 else b[:17] + "…" for b in s.blocks],
                  rotation=20, ha="right")
    ax.set_ylim(0, 5.6)
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.set_ylabel("mean score (1-5), bars ± 1 sd")
    ax.set_title(f"Workshop feedback: {s.n_responses} answers (pace: 3 = just right)")
    ax.legend(loc="upper right", ncols=3, fontsize="small")
    fig.savefig(path, dpi=100)
    return path

