"""``botkit`` subcommands: train, evaluate, store, promote, audit and retrain models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from botkit.cli._common import EXIT_GATE, CommandError, Registrar, fmt, table
from botkit.core.config import settings

__all__ = ["register"]


def cmd_train(a: argparse.Namespace) -> int:
    from botkit.ops.pipeline import train_evaluate_register

    print(f"training on {a.data or 'the bundled shopbot data'} ...", file=sys.stderr)
    from botkit.core.data import bundled_names

    # A bundled data set other than the default trains a model of its own name (shopbot-de).
    name = a.name or (a.data if a.data in bundled_names() else settings.model_name)
    r = train_evaluate_register(a.data, a.format, name=name, stage="staging", params=_params(a))
    if a.stage == "production":
        from botkit.ops.governance import change_stage

        change_stage(r.tag, "production", reason="botkit train --stage production")  # archives the previous one
    m = r.evaluation.metrics
    print(f"in-scope accuracy {fmt(m['in_scope_accuracy'])}, oos recall {fmt(m['oos_recall'])}, "
          f"trained in {r.model.train_seconds:.1f} s; report: {r.report_dir}", file=sys.stderr)
    print(r.tag)
    return 0


def _params(a: argparse.Namespace):
    from botkit.core.model import TrainParams

    return TrainParams(seed=settings.seed, recipe=getattr(a, "recipe", None) or "auto")


def _eval_quality(a: argparse.Namespace) -> int:
    """``botkit eval --cv K`` / ``--learning-curve 10,25,50,100``: fresh models on the data, no store."""
    from botkit.core.data import load
    from botkit.ops.quality import cross_validate, learning_curve, plot_learning_curve

    ds = load(a.data, a.format, seed=settings.seed)
    out: dict = {"data": ds.name, "recipe": a.recipe or "auto"}
    if a.cv:
        print(f"{a.cv}-fold stratified cross-validation on {ds.name} ...", file=sys.stderr)
        try:
            cv = cross_validate(ds, a.cv, _params(a), seed=settings.seed)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        print(table(cv.rows(), ("metric", f"mean ± std over {a.cv} folds")))
        out["cv"] = {"k": a.cv, "mean": cv.mean, "std": cv.std, "folds": cv.folds}
    if a.learning_curve:
        try:
            percents = [float(x) for x in a.learning_curve.split(",") if x.strip()]
            rows = learning_curve(ds, percents, _params(a), seed=settings.seed)
        except ValueError as exc:
            raise CommandError(f"--learning-curve: {exc}") from None
        print(table([(f"{r['percent']:g}%", r["n_train"], fmt(r["in_scope_accuracy"]), fmt(r["oos_recall"]))
                     for r in rows], ("share", "train texts", "in-scope acc", "oos recall")))
        png = plot_learning_curve(rows, settings.new_report_dir("learning-curve", ds.name) / "learning_curve.png",
                                  f"Learning curve: {ds.name}")
        print(f"plot: {png}")
        out["learning_curve"] = rows
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    if a.cv or a.learning_curve:
        return _eval_quality(a)
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
    rows = [(k, fmt(m.get(k))) for k in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1",
                                           "threshold")]
    rows += [(k, v) for k, v in m.get("latency", {}).items()]
    print(f"model {lm.tag} on {ds.name} test split ({m['n_in_scope']} in scope, {m['n_oos']} out of scope)")
    print(table(rows, ("metric", "value")))
    print("weakest intents: " + ", ".join(f"{k} ({v:.2f})" for k, v in weakest_intents(m)))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"model": lm.tag, **m}, indent=2) + "\n")
        print(f"wrote {a.json}")
    failures = gate_failures(m, min_in_scope_accuracy=a.min_in_scope_accuracy, min_oos_recall=a.min_oos_recall)
    from botkit.ops.governance import AuditLog

    AuditLog().record("evaluate", subject=lm.tag, artefacts=dict(lm.info["metadata"].get("artifact_sha256") or {}),
                      details={"data": ds.name, "data_fingerprint": ds.fingerprint(), "failures": failures,
                               **{k: m.get(k) for k in ("in_scope_accuracy", "oos_recall", "macro_f1")}})
    for f in failures:
        print(f"GATE FAILED: {f}", file=sys.stderr)
    return EXIT_GATE if failures else 0


def cmd_models_list(a: argparse.Namespace) -> int:
    from botkit.core.registry import list_models

    models = list_models(a.name)
    if not models:
        print(f"no models in {settings.bentoml_home} (run `botkit train`)")
        return 0
    rows = [(m["tag"], m["stage"], m["created"], fmt(m["metadata"].get("metrics", {}).get("in_scope_accuracy")),
             fmt(m["metadata"].get("metrics", {}).get("oos_recall"))) for m in models]
    print(table(rows, ("tag", "stage", "created", "in-scope acc", "oos recall")))
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
    anchor = None
    if a.anchor:
        seq, _, digest = a.anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise CommandError(f"--anchor wants SEQ:HASH as printed by `botkit audit anchor`, got {a.anchor!r}")
        anchor = (int(seq), digest)
    problems = log.verify(anchor=anchor)
    for p in problems:
        print(f"TAMPERED: {p}", file=sys.stderr)
    if problems:
        return EXIT_GATE
    seq, head = log.head()
    print(f"audit log intact: {seq} entries, head {head[:16]}... ({log.path})")
    return 0


def cmd_audit_anchor(a: argparse.Namespace) -> int:
    from botkit.ops.governance import AuditLog

    seq, head = AuditLog(a.path).head()
    print(f"{seq}:{head}")  # keep it elsewhere; `botkit audit verify --anchor` checks the log still holds it
    return 0


def cmd_audit_log(a: argparse.Namespace) -> int:
    from botkit.ops.governance import AuditLog, format_log

    entries = AuditLog(a.path).entries()
    print(format_log(entries[-a.last:] if a.last else entries) if entries else "the audit log is empty")
    return 0


def cmd_retrain(a: argparse.Namespace) -> int:
    from botkit.ops.retrain import retrain

    print("retraining from feedback events ...", file=sys.stderr)
    r = retrain(store=a.events, min_confidence=a.min_confidence, reviewer=a.reviewer, promote=not a.no_promote,
                approvals=a.approvals)
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


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    fmts = ("bundled", "csv", "jsonl", "clinc")
    recipes = ("auto", "tfidf", "emb", "tfidf+emb")
    t = add("train", cmd_train, "train, evaluate and register a bot; prints the new model tag")
    t.add_argument("--data", help="data file or folder, or a bundled data set by name: shopbot, shopbot-de "
                                  "(default: shopbot)")
    t.add_argument("--recipe", choices=recipes, help="features: tfidf, emb, tfidf+emb, or auto = by the data "
                                                     "set's language (default: auto)")
    t.add_argument("--format", choices=fmts, help="data format (default: guessed from the path)")
    t.add_argument("--name", help=f"model name in the store (default: {settings.model_name}; for a bundled data "
                                  "set: its name)")
    t.add_argument("--stage", default="staging", choices=("staging", "production"), help="initial stage label")

    e = add("eval", cmd_eval, "evaluate a stored model on a test split; exits 1 when a gate fails")
    e.add_argument("--model", help="model tag (default: newest production, else newest)")
    e.add_argument("--data", help="data file or folder (default: the bundled data)")
    e.add_argument("--format", choices=fmts)
    e.add_argument("--json", metavar="OUT", help="write the metrics as JSON here")
    e.add_argument("--min-in-scope-accuracy", type=float, metavar="X", help="gate: fail below this accuracy")
    e.add_argument("--min-oos-recall", type=float, metavar="Y", help="gate: fail below this OOS recall")
    e.add_argument("--cv", type=int, metavar="K", help="stratified K-fold cross-validation of fresh models on "
                                                      "the data (mean ± std of every metric); no stored model")
    e.add_argument("--learning-curve", metavar="PCTS", help="shares of training data per intent, e.g. "
                                                            "10,25,50,100: accuracy / OOS recall table and plot")
    e.add_argument("--recipe", choices=recipes, help="recipe for --cv / --learning-curve (default: auto)")

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
    av.add_argument("--anchor", help="SEQ:HASH from `botkit audit anchor`: also catch a cut or rewritten log")
    aa = add("anchor", cmd_audit_anchor, "print the head (SEQ:HASH) to keep somewhere else", ausub)
    aa.add_argument("--path", type=Path, help=f"default: {settings.audit_path}")
    al = add("log", cmd_audit_log, "show the audit log readably", ausub)
    al.add_argument("--path", type=Path)
    al.add_argument("--last", type=int, help="only the last N entries")

    rt = add("retrain", cmd_retrain, "learn from corrective feedback; promote the candidate if the policy passes")
    rt.add_argument("--events", type=Path, help=f"SQLite event store (default: {settings.events_path})")
    rt.add_argument("--min-confidence", type=float, default=0.5, help="below: queue for human review")
    rt.add_argument("--reviewer", help="reviewer recorded with the promotion")
    rt.add_argument("--no-promote", action="store_true", help="train and compare only")
    rt.add_argument("--approvals", type=Path,
                    help="CSV of reviewer-approved corrections (rows kept from corrections_review.csv)")

    rp = add("retention", cmd_retention, "apply data retention to stored events (redact or drop old text)")
    rp.add_argument("--max-age-days", type=float, required=True)
    rp.add_argument("--mode", choices=("redact", "drop"), default="redact")
    rp.add_argument("--events", type=Path, help=f"SQLite event store (default: {settings.events_path})")

