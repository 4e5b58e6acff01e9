"""``botkit bench`` subcommands: the serving benchmark (``run``) and the model benchmark (``model``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from botkit.cli._common import CommandError, Registrar

__all__ = ["register"]


def cmd_bench_run(a: argparse.Namespace) -> int:
    from botkit.ops import bench

    if a.render_only:
        print(f"wrote {bench.render(out_dir=a.out)}")
        return 0
    curve_users = tuple(int(x) for x in a.curve_users.split(",") if x.strip())
    bench.run(peers=a.peers or None, users=a.users, seconds=a.seconds, warmup_s=a.warmup, rounds=a.rounds,
              curve_users=curve_users, curve_s=a.curve_seconds, out_dir=a.out,
              results_md=None if a.no_results_md else bench.RESULTS_MD)
    return 0


def cmd_bench_profile(a: argparse.Namespace) -> int:
    from botkit.ops.bench.profile import VARIANTS, profile

    variants = tuple(v.strip() for v in a.variants.split(",") if v.strip())
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        raise CommandError(f"--variants: choose from {', '.join(VARIANTS)}")
    profile(users=a.users, seconds=a.seconds, variants=variants, out_dir=a.out)
    return 0


def cmd_bench_model(a: argparse.Namespace) -> int:
    from botkit.ops import bench_model

    if a.repeats < 1 or a.intents < 2:
        raise CommandError("--repeats must be >= 1 and --intents >= 2")
    bench_model.run(repeats=a.repeats, intents=a.intents, classifier=a.classifier, seed=a.seed)
    return 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    help_ = "benchmarks: the serving benchmark against its peers (`run`), the model alone (`model`)"
    b = sub.add_parser("bench", help=help_, description=help_)
    bsub = b.add_subparsers(dest="bench_command", metavar="ACTION", required=True)
    r = add("run", cmd_bench_run, "every peer under the same Locust load; writes reports/bench and "
            "loadtests/RESULTS.md (what `make bench` runs)", bsub)
    r.add_argument("--peers", default="", help="comma-separated subset of the peers (default: all)")
    r.add_argument("--users", type=int, default=64)
    r.add_argument("--seconds", type=float, default=30)
    r.add_argument("--warmup", type=float, default=5)
    r.add_argument("--rounds", type=int, default=2)
    r.add_argument("--curve-users", default="1,4,16,64", help="comma-separated; empty for no curve")
    r.add_argument("--curve-seconds", type=float, default=10)
    r.add_argument("--out", type=Path, default=None, help="report folder (default reports/bench)")
    r.add_argument("--no-results-md", action="store_true", help="do not render loadtests/RESULTS.md")
    r.add_argument("--render-only", action="store_true",
                   help="measure nothing: render loadtests/RESULTS.md again from the last run's summary.json")
    pr = add("profile", cmd_bench_profile, "the default under the bench load with py-spy, GC pauses and CPU per "
             "request, tuned vs untuned (what `make profile` runs)", bsub)
    pr.add_argument("--users", type=int, default=64)
    pr.add_argument("--seconds", type=float, default=15)
    pr.add_argument("--variants", default="tuned,untuned", help="comma-separated: tuned, untuned")
    pr.add_argument("--out", type=Path, default=None, help="report folder (default reports/bench/profile)")
    m = add("model", cmd_bench_model, "training time and single vs batched predict latency (Markdown table)", bsub)
    m.add_argument("--repeats", type=int, default=300, help="single-text predict calls to time (default: %(default)s)")
    m.add_argument("--intents", type=int, default=150, help="intents in the synthetic set (default: %(default)s)")
    m.add_argument("--classifier", choices=("svm", "logreg"), default="svm", help="model (default: %(default)s)")
    m.add_argument("--seed", type=int, default=42)
