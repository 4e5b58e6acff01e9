"""``botkit test`` subcommands: scripted conversation tests against a stored or freshly trained bot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botkit.cli._common import EXIT_GATE, CommandError, Registrar
from botkit.core.config import settings

__all__ = ["register"]


def cmd_test_conversations(a: argparse.Namespace) -> int:
    from botkit.ops.conversations import ConversationError, load_conversations, run_conversations, write_junit

    try:
        conversations = load_conversations(a.paths)
    except ConversationError as exc:
        raise CommandError(str(exc)) from None
    if a.train:
        from botkit.core.data import load
        from botkit.core.model import IntentModel, TrainParams

        print(f"training a bot on {a.data or 'the bundled shopbot data'} ...", file=sys.stderr)
        model = IntentModel.train(load(a.data, seed=settings.seed), TrainParams(seed=settings.seed))
        origin = f"trained now on {a.data or 'shopbot'}"
    else:
        from botkit.core.registry import load_model

        lm = load_model(a.model, a.name or settings.model_name)
        model, origin = lm.model, lm.tag
    results = run_conversations(model, conversations)
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.conversation.name}")
        for f in r.failures:
            print(f"      {f}")
    failed = sum(not r.passed for r in results)
    turns = sum(len(r.conversation.turns) for r in results)
    print(f"{len(results) - failed}/{len(results)} conversations passed ({turns} turns) on {origin}")
    if a.junit:
        print(f"wrote {write_junit(results, a.junit)}")
    return EXIT_GATE if failed else 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    t = sub.add_parser("test", help="conversation tests against a bot", description="bot quality tests")
    tsub = t.add_subparsers(dest="test_command", metavar="ACTION", required=True)
    c = add("conversations", cmd_test_conversations,
            "play scripted conversations (YAML) against a bot; JUnit XML; exits 1 when one fails", tsub)
    c.add_argument("paths", nargs="+", type=Path, help="conversation files or folders (*.yaml)")
    c.add_argument("--model", help="model tag (default: newest production, else newest)")
    c.add_argument("--name", help=f"model name in the store (default: {settings.model_name})")
    c.add_argument("--train", action="store_true", help="train a fresh bot instead of loading one from the store")
    c.add_argument("--data", help="with --train: data file, folder or bundled name (default: shopbot)")
    c.add_argument("--junit", type=Path, metavar="OUT", help="write a JUnit XML report here")
