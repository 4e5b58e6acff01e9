"""``botkit`` subcommands: notebooks and workshops."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botkit.cli._common import EXIT_GATE, CommandError, Registrar
from botkit.core.config import settings

__all__ = ["register"]


def cmd_notebooks_run(a: argparse.Namespace) -> int:
    import re

    from botkit.teaching import notebooks as nbrun

    out = Path(a.out)
    results = nbrun.run(a.paths, smoke=a.smoke, out_dir=out, in_place=a.in_place, timeout_s=a.timeout)
    junit = nbrun.write_junit(results, a.junit or out / "junit.xml")
    summary = nbrun.write_summary(results, out / "summary.md")
    print(summary.read_text())
    print(f"JUnit: {junit}\nsummary: {summary}")
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"FAILED {r.path}: {r.error}", file=sys.stderr)
    for gate in a.gate or []:
        m = re.fullmatch(r"(\w+)(>=|<=)([-+.\deE]+)", gate.replace(" ", ""))
        if not m:
            raise CommandError(f"bad --gate {gate!r}: expected NAME>=X or NAME<=X")
        name, op, bound = m.group(1), m.group(2), float(m.group(3))
        for r in results:
            if name in r.records:
                v = float(r.records[name])
                if (v < bound) if op == ">=" else (v > bound):
                    print(f"GATE FAILED: {r.path.name}: {name}={v} not {op} {bound}", file=sys.stderr)
                    failed.append(r)
    return EXIT_GATE if failed else 0


def cmd_workshop_check(a: argparse.Namespace) -> int:
    from botkit.teaching.workshop import format_lines, machine_check

    print("checking this machine for the workshop ...", file=sys.stderr, flush=True)
    lines = machine_check()
    print(format_lines(lines, color=sys.stdout.isatty()))
    return 0 if all(line.ok for line in lines if not line.optional) else EXIT_GATE


def cmd_workshop_feedback(a: argparse.Namespace) -> int:
    from botkit.teaching.workshop import summarize_feedback

    out = Path(a.out) if a.out else settings.new_report_dir("workshop-feedback")
    summary = summarize_feedback(a.file, out)
    print(f"{summary.n_responses} answers over {len(summary.blocks)} blocks")
    for key, value in summary.overall.items():
        print(f"  {key}: {'n/a' if value is None else f'{value:.2f}'}")
    for line in summary.watch:
        print(f"  watch: {line}")
    print(f"report: {summary.markdown_path}\nplot: {summary.png_path}")
    return 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    nb = sub.add_parser("notebooks", help="execute notebooks with papermill (JUnit XML, summary, gates)",
                        description="papermill-driven notebook validation, for any notebooks")
    nbsub = nb.add_subparsers(dest="notebooks_command", metavar="ACTION", required=True)
    nr = add("run", cmd_notebooks_run, "execute notebooks; exits 1 when one fails or a gate is broken", nbsub)
    nr.add_argument("paths", nargs="*", default=["notebooks"], help="notebooks or folders (default: notebooks)")
    nr.add_argument("--smoke", action="store_true", help="pass smoke=True (small, fast runs for CI)")
    nr.add_argument("--out", default="reports/notebooks", help="executed copies, junit.xml, summary.md")
    nr.add_argument("--in-place", action="store_true", help="rewrite the notebooks themselves (make notebooks)")
    nr.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: %(default)s)")
    nr.add_argument("--junit", help="JUnit XML path (default: OUT/junit.xml)")
    nr.add_argument("--gate", action="append", metavar="NAME>=X",
                    help="fail when a recorded figure breaks this bound (repeatable)")

    ws = sub.add_parser("workshop", help="workshop helpers: machine check, feedback summary",
                        description="onboarding workshop helpers")
    wsub = ws.add_subparsers(dest="workshop_command", metavar="ACTION", required=True)
    add("check", cmd_workshop_check, "verify a participant's machine: a green or red line per item", wsub)
    fb = wsub.add_parser("feedback", help="feedback rounds", description="feedback rounds")
    fbsub = fb.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    fs = add("summarize", cmd_workshop_feedback, "turn collected feedback answers (CSV) into a report and a plot",
             fbsub)
    fs.add_argument("file", type=Path, help="the collected answers (see workshops/feedback_form_template.csv)")
    fs.add_argument("--out", help="output folder (default: reports/workshop-feedback/<time>)")

