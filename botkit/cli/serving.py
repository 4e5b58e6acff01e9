"""``botkit`` subcommands: serve, chat, build, load-test, and the main job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botkit.cli._common import EXIT_GATE, CommandError, Registrar, fmt, table
from botkit.core.config import settings

__all__ = ["register"]


def cmd_loadtest(a: argparse.Namespace) -> int:
    from botkit.ops.loadtest import run_loadtest, summary_table

    r = run_loadtest(a.host, users=a.users, spawn_rate=a.spawn_rate, duration_s=a.duration, shape=a.shape,
                     think_time_s=a.think_time, slo=a.slo, processes=a.processes, model=a.model)
    print(summary_table(r))
    for line in r.slo_lines:
        print(line)
    print(f"report: {r.out_dir}")
    return r.exit_code


def cmd_chat(a: argparse.Namespace) -> int:
    from botkit.core.registry import load_model

    lm = load_model(a.model, settings.model_name)
    print(f"chatting with {lm.tag} (empty line or Ctrl-D to stop)")
    n = 0
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            break
        if not text:
            break
        n += 1
        p = lm.model.predict_one(text[: settings.max_message_chars])
        print(f"bot> {lm.model.reply(p, str(n))}")
        print(f"     [{p.intent}, confidence {p.confidence:.2f}{', fallback' if p.fallback else ''}]")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    from botkit.core.registry import resolve_tag
    from botkit.serving.serve import Server

    tag = resolve_tag(a.model, settings.model_name)
    server = Server(model=tag, host=a.host, port=a.port, workers=a.workers, log_path=a.log)
    print(f"starting {tag} with {a.workers or settings.workers} worker(s) ...", file=sys.stderr)

    def ready(s: Server) -> None:
        print(f"serving {tag} at {s.url}  (docs: {s.url}/  metrics: {s.url}/metrics)")
        print(f"log: {s.log_path}; Ctrl-C to stop", flush=True)

    code = server.run_until_signal(ready)  # SIGTERM/SIGINT, even during startup: the whole tree stops
    if code is not None:
        raise CommandError(f"the server stopped by itself (exit code {code}); see {server.log_path}")
    print("stopped", file=sys.stderr)
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    from botkit.serving.bento import build_bento

    print("building the bento (offline, pinned packages) ...", file=sys.stderr)
    b = build_bento(a.model, workers=a.workers)
    print(f"bento {b.tag} (model {b.model}, {b.workers} worker(s))")
    print(f"Dockerfile: {b.dockerfile}")
    return 0


DEMO_MESSAGES = (
    "hi there!",
    "where is my parcel? it was due yesterday",
    "can I return the shoes I bought last week",
    "my card got declined at checkout",
    "what's the capital of peru",
)


def cmd_run(a: argparse.Namespace) -> int:
    from botkit.ops.governance import change_stage
    from botkit.ops.pipeline import train_evaluate_register
    from botkit.serving.serve import Server, post_json

    steps = 3 if a.skip_loadtest else 4
    print(f"1/{steps} training the default bot on the bundled shopbot data ...", flush=True)
    r = train_evaluate_register(stage="staging")
    m = r.evaluation.metrics
    change_stage(r.tag, "production", reason="botkit run")  # recorded in the audit log
    print(f"2/{steps} registered {r.tag} as production in {settings.bentoml_home}\n")
    sizes = r.dataset.sizes()
    rows = [
        ("data", f"{r.dataset.name}: {len(r.dataset.intents)} intents, "
                 + ", ".join(f"{s} {v['in_scope']}+{v['oos']} oos" for s, v in sizes.items())),
        ("train time", f"{r.model.train_seconds:.2f} s"),
        ("in-scope accuracy", fmt(m["in_scope_accuracy"])),
        ("oos recall / precision", f"{fmt(m['oos_recall'])} / {fmt(m['oos_precision'])}"),
        ("macro F1", fmt(m["macro_f1"])),
        ("predict latency", f"{m['latency']['single_p50_ms']} ms single, "
                            f"{m['latency']['batch32_per_text_ms']} ms/text in batches of 32"),
        ("report", str(r.report_dir / "report.md")),
    ]
    print(table(rows, ("", r.tag)) + "\n")
    print(f"3/{steps} serving {r.tag} on loopback and chatting with it over HTTP ...", flush=True)
    with Server(model=r.tag) as server:
        print(f"    {server.url} ready ({settings.workers} workers)")
        for text in DEMO_MESSAGES:
            status, body = post_json(f"{server.url}/chat", {"message": text, "session_id": "make-run"})
            if status != 200:
                raise CommandError(f"/chat answered {status}: {body}")
            tag = "fallback" if body["fallback"] else body["intent"]
            print(f"    you> {text}\n    bot> {body['reply']}\n         [{tag}, {body['confidence']:.2f}, "
                  f"{body['latency_ms']:.1f} ms]")
        if not a.skip_loadtest:
            from botkit.ops.loadtest import run_loadtest, summary_table

            print(f"\n4/{steps} a short load test ({a.users} users, {a.duration} s) ...", flush=True)
            lt = run_loadtest(server.url, users=a.users, spawn_rate=a.users, duration_s=a.duration)
            print(summary_table(lt))
            print("\n".join(lt.slo_lines))
            print(f"    report: {lt.out_dir}")
            if lt.exit_code:
                raise CommandError("the load test broke its SLO (see above)", EXIT_GATE)
    print("\nserver stopped. Next: `botkit serve`, `botkit chat`, `make lab`, `make bench`.")
    return 0


# ------------------------------------------------------------------------------------- parser


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    lt = add("loadtest", cmd_loadtest, "run Locust headless against the service; exit code follows the SLO gate")
    lt.add_argument("--host", help="target URL (default: start the service here)")
    lt.add_argument("--model", help="model to serve when no --host is given")
    lt.add_argument("--users", type=int, default=10)
    lt.add_argument("--spawn-rate", type=float, default=5)
    lt.add_argument("--duration", type=float, default=20, help="seconds (default: %(default)s)")
    lt.add_argument("--shape", choices=("step", "spike", "soak"), help="a load shape instead of constant users")
    lt.add_argument("--think-time", type=float, default=0.0, help="seconds between a user's requests")
    lt.add_argument("--slo", type=Path, help="SLO thresholds (default: loadtests/slo.yaml)")
    lt.add_argument("--processes", type=int, help="Locust worker processes (distributed mode on loopback)")

    c = add("chat", cmd_chat, "chat with a stored bot in the terminal (shows intent and confidence)")
    c.add_argument("--model", help="model tag (default: newest production, else newest)")

    sv = add("serve", cmd_serve, "serve a stored model over HTTP on loopback until Ctrl-C")
    sv.add_argument("--model", help="model tag (default: newest production, else newest)")
    sv.add_argument("--host", default=settings.host, help="bind address, loopback only (default: %(default)s)")
    sv.add_argument("--port", type=int, default=settings.port, help="default: %(default)s")
    sv.add_argument("--workers", type=int, help=f"worker processes (default: {settings.workers})")
    sv.add_argument("--log", type=Path, help="server log file (default: .botkit/logs/server-PORT.log)")

    b = add("build", cmd_build, "build a bento (service + model) offline; prints its tag and Dockerfile path")
    b.add_argument("--model", help="model tag (default: newest production, else newest)")
    b.add_argument("--workers", type=int, help=f"workers frozen into the bento (default: {settings.workers})")

    rn = add("run", cmd_run, "the main job on the embedded default: train, evaluate, register, serve, load-test")
    rn.add_argument("--skip-loadtest", action="store_true", help="stop after the HTTP chat demo")
    rn.add_argument("--users", type=int, default=16, help="load-test users (default: %(default)s)")
    rn.add_argument("--duration", type=int, default=15, help="load-test seconds (default: %(default)s)")
