"""``botkit cluster``: N replicas behind HAProxy with Redis and Prometheus, on loopback."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from botkit.cli._common import EXIT_GATE, CommandError, Registrar, table

__all__ = ["register"]


def _attach(a: argparse.Namespace):
    from botkit.ops.cluster import Cluster, ClusterError

    try:
        return Cluster.attach(a.dir)
    except ClusterError as exc:
        raise CommandError(str(exc)) from None


def cmd_up(a: argparse.Namespace) -> int:
    from botkit.ops.cluster import Cluster, ClusterError

    kwargs = {k: v for k, v in (("directory", Path(a.dir) if a.dir else None), ("replicas", a.replicas),
                                 ("workers", a.workers)) if v is not None}
    try:
        c = Cluster(model=a.model, prometheus=not a.no_prometheus, **kwargs).start(timeout_s=a.timeout)
    except ClusterError as exc:
        raise CommandError(str(exc)) from None
    print(f"cluster up: {len(c.specs)} replicas behind {c.lb_url}  (redis {c.redis_url}, "
          f"prometheus {c.prometheus_url or 'off'}); `botkit cluster down` stops it")
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    status = _attach(a).status()
    if a.json:
        print(json.dumps(status, indent=1))
    else:
        print(f"load balancer {status['lb_url']}   redis {status['redis_url']}   "
              f"prometheus {status['prometheus_url'] or 'off'}")
        rows = [(r["name"], r["url"], r["pid"], r["state"], "yes" if r["healthy"] else "NO", r["lb_status"],
                 r["weight"], r["model"]) for r in status["replicas"]]
        rows += [(s["name"], "", s["pid"], s["state"], "", "", "", "") for s in status["services"]]
        print(table(rows, ("name", "url", "pid", "state", "healthy", "haproxy", "weight", "model")))
    healthy = all(r["healthy"] for r in status["replicas"])
    return 0 if healthy else EXIT_GATE


def cmd_down(a: argparse.Namespace) -> int:
    from botkit.ops.cluster import Cluster, ClusterError

    try:
        c = Cluster.attach(a.dir)
    except ClusterError:
        print("no cluster running")
        return 0
    killed = c.stop()
    print("cluster down" + (f" (had to kill {len(killed)} stray processes)" if killed else ""))
    return 0


def cmd_drill(a: argparse.Namespace) -> int:
    from botkit.ops.cluster.drills import DRILLS, run_drill

    if a.kind not in DRILLS:
        raise CommandError(f"unknown drill {a.kind!r}: {', '.join(DRILLS)}")
    result = run_drill(_attach(a), a.kind, users=a.users, duration_s=a.duration, fault_s=a.fault)
    text = json.dumps(result, indent=1)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0 if result["targets_met"] else EXIT_GATE


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add ``botkit cluster up|status|down|drill`` to the one parser."""
    c = add("cluster", lambda a: 0, "many replicas behind HAProxy with Redis and Prometheus (loopback)")
    csub = c.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    up = add("up", cmd_up, "start N replicas, HAProxy, Redis, Prometheus under supervisord", parent=csub)
    up.add_argument("--replicas", type=int, default=None, help="default: settings.cluster_replicas (3)")
    up.add_argument("--workers", type=int, default=None, help="workers per replica (default 1)")
    up.add_argument("--model", default=None, help="model tag (default: the production model)")
    up.add_argument("--no-prometheus", action="store_true")
    up.add_argument("--timeout", type=float, default=180.0)
    st = add("status", cmd_status, "replicas, pids, ports, health, models", parent=csub)
    st.add_argument("--json", action="store_true")
    add("down", cmd_down, "stop everything the cluster started", parent=csub)
    dr = add("drill", cmd_drill, "a fault under load: kill | redis-down | redis-hang", parent=csub)
    dr.add_argument("kind", help="kill | redis-down | redis-hang")
    dr.add_argument("--users", type=int, default=16)
    dr.add_argument("--duration", type=float, default=40.0, help="seconds of load")
    dr.add_argument("--fault", type=float, default=10.0, help="seconds Redis stays down or hung")
    dr.add_argument("--json", default=None, help="write the figures here too")
    for p in (up, st, dr, csub.choices["down"]):
        p.add_argument("--dir", default=None, help="cluster folder (default: $BOTKIT_HOME/cluster)")
