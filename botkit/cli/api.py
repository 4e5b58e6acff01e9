"""``botkit openapi``: write or check the published API contract (``deploy/openapi.json``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from botkit.cli._common import EXIT_GATE, Registrar

__all__ = ["register"]


def cmd_openapi(a: argparse.Namespace) -> int:
    from botkit.serving.contract import SNAPSHOT, build_openapi, render

    text = render(build_openapi())
    out = Path(a.out) if a.out else SNAPSHOT
    if a.write:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
        return 0
    if a.check:
        if out.exists() and out.read_text(encoding="utf-8") == text:
            print(f"{out} is up to date")
            return 0
        print(f"{out} differs from the service's contract: run `botkit openapi --write` and review the diff")
        return EXIT_GATE
    print(text, end="")
    return 0


def register(add: Registrar, sub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the one ``botkit`` parser."""
    o = add("openapi", cmd_openapi, "print the OpenAPI contract of the chat API; --write refreshes the snapshot")
    mode = o.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write it to the snapshot (default deploy/openapi.json)")
    mode.add_argument("--check", action="store_true", help="exit non-zero when the snapshot is out of date")
    o.add_argument("--out", help="snapshot path (default: deploy/openapi.json in the checkout)")
