"""What every ``botkit`` subcommand module shares: the error type, exit codes and table printing."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["EXIT_GATE", "EXIT_ROLLED_BACK", "EXIT_USAGE", "CommandError", "Registrar", "fmt", "table"]

EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class Registrar(Protocol):
    """``add(name, fn, help, parent=sub)``: one subcommand with its handler, on the one parser."""

    def __call__(self, name: str, fn: Callable[[argparse.Namespace], int], help_: str,
                 parent: argparse._SubParsersAction | None = None) -> argparse.ArgumentParser: ...


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("n/a" if v is None else str(v))
