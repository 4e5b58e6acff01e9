"""The one ``botkit`` command: parses arguments and calls library functions, nothing more.

Every failure a user can cause (a missing file, a bad format, an unknown model, a broken
gate) ends in one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from botkit import __version__
from botkit.core.config import settings

__all__ = ["main"]

EXIT_GATE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("n/a" if v is None else str(v))


# ------------------------------------------------------------------------------------ commands


def cmd_train(a: argparse.Namespace) -> int:
    from botkit.ops.pipeline import train_evaluate_register

    print(f"training on {a.data or 'the bundled shopbot data'} ...", file=sys.stderr)
    r = train_evaluate_register(a.data, a.format, name=a.name, stage="staging")
    if a.stage == "production":
        from botkit.core.registry import set_stage

        set_stage(r.tag, "production")  # archives the previous production model
    m = r.evaluation.metrics
    print(f"in-scope accuracy {_fmt(m['in_scope_accuracy'])}, oos recall {_fmt(m['oos_recall'])}, "
          f"trained in {r.model.train_seconds:.1f} s; report: {r.report_dir}", file=sys.stderr)
    print(r.tag)
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from botkit.core.data import load
    from botkit.core.evaluate import evaluate, gate_failures, weakest_intents
    from botkit.core.registry import load_model

    lm = load_model(a.model, settings.model_name)
    ds = load(a.data, a.format, seed=settings.seed)
    unknown = sorted({y for _, y in ds.test} - set(lm.model.classes) - {"oos"})
    if unknown:
        raise CommandError(f"the test data has intents the model {lm.tag} does not know: {', '.join(unknown[:5])}")
    ev = evaluate(lm.model, ds.test)
    m = ev.metrics
    rows = [(k, _fmt(m.get(k))) for k in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1",
                                           "threshold")]
    rows += [(k, v) for k, v in m.get("latency", {}).items()]
    print(f"model {lm.tag} on {ds.name} test split ({m['n_in_scope']} in scope, {m['n_oos']} out of scope)")
    print(_table(rows, ("metric", "value")))
    print("weakest intents: " + ", ".join(f"{k} ({v:.2f})" for k, v in weakest_intents(m)))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"model": lm.tag, **m}, indent=2) + "\n")
        print(f"wrote {a.json}")
    failures = gate_failures(m, min_in_scope_accuracy=a.min_in_scope_accuracy, min_oos_recall=a.min_oos_recall)
    for f in failures:
        print(f"GATE FAILED: {f}", file=sys.stderr)
    return EXIT_GATE if failures else 0


def cmd_models_list(a: argparse.Namespace) -> int:
    from botkit.core.registry import list_models

    models = list_models(a.name)
    if not models:
        print(f"no models in {settings.bentoml_home} (run `botkit train`)")
        return 0
    rows = [(m["tag"], m["stage"], m["created"], _fmt(m["metadata"].get("metrics", {}).get("in_scope_accuracy")),
             _fmt(m["metadata"].get("metrics", {}).get("oos_recall"))) for m in models]
    print(_table(rows, ("tag", "stage", "created", "in-scope acc", "oos recall")))
    return 0


def cmd_models_show(a: argparse.Namespace) -> int:
    from botkit.core.registry import get_info, resolve_tag

    print(json.dumps(get_info(resolve_tag(a.tag, settings.model_name)), indent=2, default=str))
    return 0


def cmd_models_promote(a: argparse.Namespace) -> int:
    from botkit.core.registry import resolve_tag
    from botkit.ops.governance import Policy, promote

    tag = resolve_tag(a.tag, settings.model_name)
    print(f"checking {tag} against the promotion policy ...", file=sys.stderr)
    decision = promote(tag, reviewer=a.reviewer, policy=Policy.load(a.policy) if a.policy else None,
                       force=a.force, who=a.who)
    print(decision.explain())
    return 0 if decision.approved else EXIT_GATE


def cmd_models_rollback(a: argparse.Namespace) -> int:
    from botkit.ops.governance import rollback

    restored, demoted = rollback(reason=a.reason, who=a.who, name=a.name)
    print(f"{restored} is production again; {demoted} archived")
    return 0


def cmd_models_card(a: argparse.Namespace) -> int:
    from botkit.core.registry import resolve_tag
    from botkit.ops.governance import model_card, write_card

    tag = resolve_tag(a.tag, settings.model_name)
    if a.out:
        print(write_card(tag, a.out))
    else:
        print(model_card(tag))
    return 0


def cmd_audit_verify(a: argparse.Namespace) -> int:
    from botkit.ops.governance import AuditLog

    log = AuditLog(a.path)
    problems = log.verify()
    for p in problems:
        print(f"TAMPERED: {p}", file=sys.stderr)
    if problems:
        return EXIT_GATE
    seq, head = log.head()
    print(f"audit log intact: {seq} entries, head {head[:16]}... ({log.path})")
    return 0


def cmd_audit_log(a: argparse.Namespace) -> int:
    from botkit.ops.governance import AuditLog, format_log

    entries = AuditLog(a.path).entries()
    print(format_log(entries[-a.last:] if a.last else entries) if entries else "the audit log is empty")
    return 0


def cmd_retrain(a: argparse.Namespace) -> int:
    from botkit.ops.retrain import retrain

    print("retraining from feedback events ...", file=sys.stderr)
    r = retrain(store=a.events, min_confidence=a.min_confidence, reviewer=a.reviewer, promote=not a.no_promote)
    print(f"data set {r.dataset_name}: {r.n_new_examples} new example(s) from feedback, "
          f"{r.n_review} utterance(s) queued for review" + (f", skipped {r.skipped}" if r.skipped else ""))
    for name, path in r.paths.items():
        print(f"  {name}: {path}")
    if r.candidate_tag is None:
        print("nothing new to learn: no candidate trained")
        return 0
    print(f"candidate {r.candidate_tag} vs production {r.production_tag}")
    if r.decision is not None:
        print(r.decision.explain())
    return 0 if (r.promoted or a.no_promote) else EXIT_GATE


def cmd_retention(a: argparse.Namespace) -> int:
    from botkit.ops.governance import apply_retention

    n = apply_retention(a.events or settings.events_path, a.max_age_days, a.mode)
    print(f"{n} event(s) older than {a.max_age_days:g} days {'redacted' if a.mode == 'redact' else 'emptied'}")
    return 0


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
    server.start()
    print(f"serving {tag} at {server.url}  (docs: {server.url}/  metrics: {server.url}/metrics)")
    print(f"log: {server.log_path}; Ctrl-C to stop", flush=True)
    try:
        code = server.proc.wait()
        raise CommandError(f"the server stopped by itself (exit code {code}); see {server.log_path}")
    except KeyboardInterrupt:
        print("\nstopping ...", file=sys.stderr)
        server.stop()
        print("stopped", file=sys.stderr)
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    from botkit.serving.bento import build_bento

    print("building the bento (offline, pinned packages) ...", file=sys.stderr)
    b = build_bento(a.model, workers=a.workers)
    print(f"bento {b.tag} (model {b.model}, {b.workers} worker(s))")
    print(f"Dockerfile: {b.dockerfile}")
    return 0


def cmd_k8s(a: argparse.Namespace) -> int:
    from botkit.ops.k8s import K8sSettings, validate, write

    ks = K8sSettings(image=a.image, replicas=a.replicas, cpu_request=a.cpu_request, cpu_limit=a.cpu_limit,
                     memory_request=a.memory_request, memory_limit=a.memory_limit, min_replicas=a.min_replicas,
                     max_replicas=a.max_replicas, target_cpu=a.target_cpu, service_monitor=a.service_monitor)
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
    print(_table(rows, ("plan", f"{a.target_rps:g} rps at p95 <= {a.p95_slo_ms:g} ms")))
    for line in p.assumptions:
        print(f"assumes: {line}")
    return 0


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


def cmd_container(a: argparse.Namespace) -> int:
    from botkit.ops import container

    return container.main(a.rest)


def cmd_monitor(a: argparse.Namespace) -> int:
    from botkit.ops import monitor

    return monitor.main([a.monitor_command, *a.rest])


def cmd_workshop_check(a: argparse.Namespace) -> int:
    from botkit.teaching.workshop import format_lines, machine_check

    print("checking this machine for the workshop ...", file=sys.stderr, flush=True)
    lines = machine_check()
    print(format_lines(lines, color=sys.stdout.isatty()))
    return 0 if all(line.ok for line in lines) else EXIT_GATE


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


DEMO_MESSAGES = (
    "hi there!",
    "where is my parcel? it was due yesterday",
    "can I return the shoes I bought last week",
    "my card got declined at checkout",
    "what's the capital of peru",
)


def cmd_run(a: argparse.Namespace) -> int:
    from botkit.core.registry import set_stage
    from botkit.ops.pipeline import train_evaluate_register
    from botkit.serving.serve import Server, post_json

    steps = 3 if a.skip_loadtest else 4
    print(f"1/{steps} training the default bot on the bundled shopbot data ...", flush=True)
    r = train_evaluate_register(stage="staging")
    m = r.evaluation.metrics
    set_stage(r.tag, "production")
    print(f"2/{steps} registered {r.tag} as production in {settings.bentoml_home}\n")
    sizes = r.dataset.sizes()
    rows = [
        ("data", f"{r.dataset.name}: {len(r.dataset.intents)} intents, "
                 + ", ".join(f"{s} {v['in_scope']}+{v['oos']} oos" for s, v in sizes.items())),
        ("train time", f"{r.model.train_seconds:.2f} s"),
        ("in-scope accuracy", _fmt(m["in_scope_accuracy"])),
        ("oos recall / precision", f"{_fmt(m['oos_recall'])} / {_fmt(m['oos_precision'])}"),
        ("macro F1", _fmt(m["macro_f1"])),
        ("predict latency", f"{m['latency']['single_p50_ms']} ms single, "
                            f"{m['latency']['batch32_per_text_ms']} ms/text in batches of 32"),
        ("report", str(r.report_dir / "report.md")),
    ]
    print(_table(rows, ("", r.tag)) + "\n")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="botkit", description=__doc__.splitlines()[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"botkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmts = ("bundled", "csv", "jsonl", "clinc")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, parent=sub):
        sp = parent.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    t = add("train", cmd_train, "train, evaluate and register a bot; prints the new model tag")
    t.add_argument("--data", help="data file or folder (default: the bundled shopbot data)")
    t.add_argument("--format", choices=fmts, help="data format (default: guessed from the path)")
    t.add_argument("--name", default=settings.model_name, help="model name in the store (default: %(default)s)")
    t.add_argument("--stage", default="staging", choices=("staging", "production"), help="initial stage label")

    e = add("eval", cmd_eval, "evaluate a stored model on a test split; exits 1 when a gate fails")
    e.add_argument("--model", help="model tag (default: newest production, else newest)")
    e.add_argument("--data", help="data file or folder (default: the bundled data)")
    e.add_argument("--format", choices=fmts)
    e.add_argument("--json", metavar="OUT", help="write the metrics as JSON here")
    e.add_argument("--min-in-scope-accuracy", type=float, metavar="X", help="gate: fail below this accuracy")
    e.add_argument("--min-oos-recall", type=float, metavar="Y", help="gate: fail below this OOS recall")

    m = sub.add_parser("models", help="list, show and promote stored models", description="the model store")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = add("list", cmd_models_list, "list stored models with stage and headline metrics", msub)
    ml.add_argument("--name", default=settings.model_name)
    ms = add("show", cmd_models_show, "show one model's metadata as JSON", msub)
    ms.add_argument("tag", nargs="?", help="model tag (default: newest production, else newest)")
    mp = add("promote", cmd_models_promote, "promote a model to production if the policy allows it", msub)
    mp.add_argument("tag")
    mp.add_argument("--reviewer", help="who reviewed the model (required by the default policy)")
    mp.add_argument("--policy", type=Path, help="policy YAML (default: botkit/policy.yaml)")
    mp.add_argument("--force", action="store_true", help="override metric rules (recorded in the audit log)")
    mp.add_argument("--who", help="who runs this (default: $BOTKIT_USER, else the OS user)")
    mr = add("rollback", cmd_models_rollback, "restore the previous production model", msub)
    mr.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    mr.add_argument("--who")
    mr.add_argument("--name", default=settings.model_name)
    mc = add("card", cmd_models_card, "print (or write) a model card in Markdown", msub)
    mc.add_argument("tag", nargs="?", help="model tag (default: newest production, else newest)")
    mc.add_argument("--out", type=Path, help="write the card into this folder instead of printing it")

    au = sub.add_parser("audit", help="the tamper-evident audit log", description="the audit log")
    ausub = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    av = add("verify", cmd_audit_verify, "check the hash chain; exits 1 and names the entry when tampered", ausub)
    av.add_argument("--path", type=Path, help=f"default: {settings.audit_path}")
    al = add("log", cmd_audit_log, "show the audit log readably", ausub)
    al.add_argument("--path", type=Path)
    al.add_argument("--last", type=int, help="only the last N entries")

    rt = add("retrain", cmd_retrain, "learn from corrective feedback; promote the candidate if the policy passes")
    rt.add_argument("--events", type=Path, help=f"SQLite event store (default: {settings.events_path})")
    rt.add_argument("--min-confidence", type=float, default=0.5, help="below: queue for human review")
    rt.add_argument("--reviewer", help="reviewer recorded with the promotion")
    rt.add_argument("--no-promote", action="store_true", help="train and compare only")

    rp = add("retention", cmd_retention, "apply data retention to stored events (redact or drop old text)")
    rp.add_argument("--max-age-days", type=float, required=True)
    rp.add_argument("--mode", choices=("redact", "drop"), default="redact")
    rp.add_argument("--events", type=Path, help=f"SQLite event store (default: {settings.events_path})")

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
    k.add_argument("--no-validate", dest="validate", action="store_false", help="skip kubernetes-validate")

    cp = add("capacity", cmd_capacity, "replicas needed for a target load and p95 SLO (M/M/c, Erlang C)")
    cp.add_argument("--target-rps", type=float, required=True)
    cp.add_argument("--per-replica-rps", type=float, required=True, help="measured saturation throughput")
    cp.add_argument("--p95-slo-ms", type=float, required=True)
    cp.add_argument("--service-time-ms", type=float, required=True, help="mean service time at low load")
    cp.add_argument("--headroom", type=float, default=0.3)

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

    ct = add("container", cmd_container, "prove the image: bento → local Debian base → buildah image → run → /chat")
    ct.add_argument("rest", nargs=argparse.REMAINDER, help="--model TAG, --workers N, --rebuild-base, --json")

    mo = add("monitor", cmd_monitor, "drift and anomaly report (`report`), scripted traffic (`simulate`)")
    mo.add_argument("monitor_command", choices=("report", "simulate"), metavar="{report,simulate}")
    mo.add_argument("rest", nargs=argparse.REMAINDER, help="options of the action (see `botkit monitor report -h`)")

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

    rn = add("run", cmd_run, "the main job on the embedded default: train, evaluate, register, serve, load-test")
    rn.add_argument("--skip-loadtest", action="store_true", help="stop after the HTTP chat demo")
    rn.add_argument("--users", type=int, default=16, help="load-test users (default: %(default)s)")
    rn.add_argument("--duration", type=int, default=15, help="load-test seconds (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    from botkit.core.data import DataError
    from botkit.core.registry import RegistryError
    from botkit.serving.serve import ServerError

    warnings.formatwarning = lambda message, *_, **__: f"botkit: warning: {message}\n"
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (CommandError, DataError, RegistryError, ServerError, OSError, ValueError, RuntimeError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"botkit: error: {msg}", file=sys.stderr)
        return getattr(exc, "code", EXIT_USAGE)
    except KeyboardInterrupt:
        print("botkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: still one line, the traceback on request
        if os.environ.get("BOTKIT_DEBUG"):
            raise
        print(f"botkit: internal error: {type(exc).__name__}: {exc} (BOTKIT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
