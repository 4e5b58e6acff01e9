"""``botkit`` subcommands: Kubernetes manifests, capacity planning, the container proof."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botkit.cli._common import EXIT_GATE, CommandError, Registrar, table

__all__ = ["register"]


def cmd_k8s(a: argparse.Namespace) -> int:
    from botkit.ops.k8s import K8sSettings, validate, write

    ks = K8sSettings(image=a.image, replicas=a.replicas, cpu_request=a.cpu_request, cpu_limit=a.cpu_limit,
                     memory_request=a.memory_request, memory_limit=a.memory_limit, min_replicas=a.min_replicas,
                     max_replicas=a.max_replicas, target_cpu=a.target_cpu, service_monitor=a.service_monitor,
                     redis_url=a.redis_url)
    if a.canary:
        from botkit.ops.k8s_canary import CanarySettings, write_canary

        paths = write_canary(ks, CanarySettings(a.canary, a.stable_model, a.canary_weight), Path(a.out))
    else:
        paths = write(ks, Path(a.out))
    for p in paths:
        print(p)
    if a.validate:
        problems = validate(paths)
        for line in problems:
            print(f"INVALID: {line}", file=sys.stderr)
        if problems:
            return EXIT_GATE
        print(f"{len(paths)} manifests valid (kubernetes-validate --strict)")
    return 0


def cmd_capacity(a: argparse.Namespace) -> int:
    from botkit.ops.capacity import plan

    p = plan(a.target_rps, a.per_replica_rps, a.p95_slo_ms, service_time_ms=a.service_time_ms,
             headroom=a.headroom)
    rows = [("replicas", p.replicas), ("utilisation", f"{p.utilisation:.0%}"),
            ("predicted p95", f"{p.predicted_p95_ms:.1f} ms"), ("P(wait)", f"{p.p_wait:.3f}")]
    rows += [(f"hpa {k}", v) for k, v in p.hpa().items()]
    print(table(rows, ("plan", f"{a.target_rps:g} rps at p95 <= {a.p95_slo_ms:g} ms")))
    for line in p.assumptions:
        print(f"assumes: {line}")
    return 0


def cmd_container(a: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from botkit.ops.container import prove

    try:
        r = prove(a.model, workers=a.workers, rebuild_base=a.rebuild_base)
    except RuntimeError as exc:  # "<step>: <last line of the failing command>": a failed proof, not a usage error
        raise CommandError(str(exc), code=EXIT_GATE) from exc
    print(json.dumps(asdict(r), indent=1) if a.json else r.summary())
    return 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    k = add("k8s", cmd_k8s, "write Kubernetes manifests (Deployment, Service, HPA, PDB) and validate them")
    k.add_argument("--out", default="deploy/k8s", help="output folder (default: %(default)s)")
    k.add_argument("--image", default="localhost/botkit:latest")
    k.add_argument("--replicas", type=int, default=2)
    k.add_argument("--cpu-request", default="500m")
    k.add_argument("--cpu-limit", default="1")
    k.add_argument("--memory-request", default="512Mi")
    k.add_argument("--memory-limit", default="1Gi")
    k.add_argument("--min-replicas", type=int, default=2)
    k.add_argument("--max-replicas", type=int, default=10)
    k.add_argument("--target-cpu", type=int, default=70, help="HPA target CPU utilisation in %%")
    k.add_argument("--service-monitor", action="store_true", help="also write a prometheus-operator ServiceMonitor")
    k.add_argument("--redis-url", default="", help="a managed Redis for the event stream (default: an in-cluster "
                   "Redis StatefulSet with a PVC, its Service and a NetworkPolicy)")
    k.add_argument("--no-validate", dest="validate", action="store_false", help="skip kubernetes-validate")
    k.add_argument("--canary", default=None, metavar="TAG",
                   help="also render a canary Deployment serving TAG and its analysis ConfigMap")
    k.add_argument("--canary-weight", type=int, default=10, help="percent of pods on the canary (default 10)")
    k.add_argument("--stable-model", default="", help="model tag of the stable track (default: the image's)")

    cp = add("capacity", cmd_capacity, "replicas needed for a target load and p95 SLO (M/M/c, Erlang C)")
    cp.add_argument("--target-rps", type=float, required=True)
    cp.add_argument("--per-replica-rps", type=float, required=True, help="measured saturation throughput")
    cp.add_argument("--p95-slo-ms", type=float, required=True)
    cp.add_argument("--service-time-ms", type=float, required=True, help="mean service time at low load")
    cp.add_argument("--headroom", type=float, default=0.3)

    ct = add("container", cmd_container, "prove the image: bento → local Debian base → buildah image → run → /chat")
    ct.add_argument("--model", help="model tag (default: newest production, else newest)")
    ct.add_argument("--workers", type=int, default=1, help="workers frozen into the bento (default: %(default)s)")
    ct.add_argument("--rebuild-base", action="store_true", help="rebuild the Debian base image")
    ct.add_argument("--json", action="store_true", help="print the result as JSON")

