"""``botkit`` subcommands for safe releases: the shadow report (and, with the cluster, deploy and canary)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from botkit.cli._common import CommandError, Registrar

__all__ = ["register"]


def cmd_shadow_report(a: argparse.Namespace) -> int:
    from botkit.ops import shadow

    events = shadow.read_shadowed(shadow_model=a.shadow_model, limit=a.limit)
    if not events and not a.measure_cost:
        raise CommandError("no chat events with a shadow answer: serve with BOTKIT_SHADOW_MODEL=TAG first")
    rep = shadow.shadow_report(events, top=a.top)
    if a.measure_cost:
        prod = a.production or (max(rep.production_models, key=rep.production_models.get)
                                if rep.production_models else None)
        cand = a.shadow_model or (max(rep.shadow_models, key=rep.shadow_models.get) if rep.shadow_models else None)
        if not prod or not cand:
            raise CommandError("--measure-cost needs --production TAG and --shadow-model TAG (no events to guess from)")
        rep.cost = shadow.measure_cost(prod, cand, users=a.users, duration_s=a.duration, rounds=a.rounds,
                                       workers=a.workers)
    out = shadow.write_report(rep, Path(a.out) if a.out else None)
    print(json.dumps(rep.to_dict(), indent=2) if a.json else shadow.render_markdown(rep))
    print(f"report: {out}")
    return 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add ``botkit shadow report`` to the one parser."""
    s = add("shadow", lambda a: 0, "shadow model: compare a candidate with production on live traffic")
    ssub = s.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    r = add("report", cmd_shadow_report, "agreement, fallback rates, top disagreements, measured cost", parent=ssub)
    r.add_argument("--shadow-model", default=None, help="only events of this shadow tag (default: all)")
    r.add_argument("--limit", type=int, default=200_000, help="at most this many events")
    r.add_argument("--top", type=int, default=10, help="disagreements to list")
    r.add_argument("--out", default=None, help="report folder (default: reports/shadow/<stamp>)")
    r.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    r.add_argument("--measure-cost", action="store_true",
                   help="also load-test one server without and one with the shadow (interleaved)")
    r.add_argument("--production", default=None, help="production tag for --measure-cost (default: from events)")
    r.add_argument("--users", type=int, default=32)
    r.add_argument("--duration", type=float, default=20.0, help="seconds per arm and round")
    r.add_argument("--rounds", type=int, default=2)
    r.add_argument("--workers", type=int, default=None)
