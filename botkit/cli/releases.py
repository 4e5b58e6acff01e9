"""``botkit`` subcommands for safe releases: ``shadow report``, ``cluster deploy`` and ``cluster canary``.

The cluster subcommands hang under the ``cluster`` parser that :mod:`botkit.cli.cluster` registers
(it comes before this module in ``MODULES``), so the cluster's own file needs no edit for them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from botkit.cli._common import EXIT_ROLLED_BACK, CommandError, Registrar, table

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
                                       workers=a.workers, sample=a.shadow_sample)
    out = shadow.write_report(rep, Path(a.out) if a.out else None)
    print(json.dumps(rep.to_dict(), indent=2) if a.json else shadow.render_markdown(rep))
    print(f"report: {out}")
    return 0


def _cluster(a: argparse.Namespace):
    from botkit.ops.cluster import Cluster, ClusterError

    try:
        return Cluster.attach(a.dir)
    except ClusterError as exc:
        raise CommandError(str(exc), code=1) from None


def cmd_cluster_deploy(a: argparse.Namespace) -> int:
    from botkit.ops.releases.rollout import deploy

    res = deploy(_cluster(a), a.tag, who=a.who)
    rows = [(s.replica, s.from_model or "production", s.to_model, s.in_flight_at_drain, f"{s.drain_s:.2f}",
             f"{s.restart_s:.1f}") for s in res.steps]
    print(table(rows, ("replica", "from", "to", "in flight at drain", "drain s", "restart s")))
    print(f"rolled out {a.tag} to {len(res.steps)} replicas in {res.seconds:.1f} s (audit log: rollout)")
    return 0


def cmd_cluster_canary(a: argparse.Namespace) -> int:
    from botkit.ops.releases.canary import run_canary

    r = run_canary(_cluster(a), a.tag, weight=a.weight, duration_s=a.duration, min_requests=a.min_requests,
                   drill=a.drill, canaries=a.canaries, users=a.users, feedback_prob=a.feedback_prob,
                   reviewer=a.reviewer, who=a.who, baseline=not a.no_baseline,
                   rollout_on_promote=not a.no_rollout, out_dir=Path(a.out) if a.out else None)
    print((r.out_dir / "canary.md").read_text() if r.out_dir else r.reason)
    if a.json:
        Path(a.json).write_text(json.dumps(r.to_dict(), indent=2, default=str) + "\n")
    print(f"report: {r.out_dir}")
    return 0 if r.decision == "promote" else EXIT_ROLLED_BACK


def _register_cluster(add: Registrar, sub: argparse._SubParsersAction) -> None:
    cluster = sub.choices.get("cluster")
    csub = next((x for x in (cluster._actions if cluster else []) if isinstance(x, argparse._SubParsersAction)),
                None)
    if csub is None:  # no cluster module registered: nothing to hang the release commands on
        return
    d = add("deploy", cmd_cluster_deploy, "rolling update: drain, restart on TAG, /readyz, back; one replica at a time",
            parent=csub)
    d.add_argument("tag", help="model tag to roll out")
    c = add("canary", cmd_cluster_canary, "canary TAG on a share of traffic; analyse; promote (exit 0) or roll "
            "back (exit 3)", parent=csub)
    c.add_argument("tag", help="candidate model tag")
    c.add_argument("--weight", type=float, default=10, help="percent of requests to the canary (default 10)")
    c.add_argument("--duration", type=float, default=60, help="analysis window in seconds (default 60)")
    c.add_argument("--min-requests", type=int, default=100, help="canary requests needed to judge (default 100)")
    c.add_argument("--drill", choices=("latency", "errors"), default=None,
                   help="inject faults into the canary replicas (latency: +150 ms, errors: 20 %% 500s)")
    c.add_argument("--canaries", type=int, default=1, help="replicas on the candidate (default 1)")
    c.add_argument("--users", type=int, default=8, help="Locust users driving the window (default 8)")
    c.add_argument("--feedback-prob", type=float, default=0.5,
                   help="share of answers the load's users rate (down when wrong; default 0.5)")
    c.add_argument("--reviewer", default=None, help="reviewer for the promotion policy (botkit/policy.yaml)")
    c.add_argument("--no-rollout", action="store_true", help="on promote, leave the stable replicas as they are")
    c.add_argument("--no-baseline", action="store_true",
                   help="judge against the stable replicas instead of fresh baseline replicas of the stable model")
    c.add_argument("--out", default=None, help="report folder (default reports/canary/<stamp>)")
    c.add_argument("--json", default=None, help="also write the result as JSON here")
    for p in (d, c):
        p.add_argument("--dir", default=None, help="cluster folder (default $BOTKIT_HOME/cluster)")
        p.add_argument("--who", default=None, help="who runs it (audit log; default BOTKIT_USER or the OS user)")


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add ``botkit shadow report`` and ``botkit cluster deploy|canary`` to the one parser."""
    _register_cluster(add, sub)
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
    r.add_argument("--shadow-sample", type=float, default=1.0, help="BOTKIT_SHADOW_SAMPLE of the measured server")
