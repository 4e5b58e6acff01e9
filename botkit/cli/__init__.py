"""The one ``botkit`` command: parses arguments and calls library functions, nothing more.

Every failure a user can cause (a missing file, a bad format, an unknown model, a broken
gate) ends in one line on stderr and a non-zero exit code, never a traceback. Each module of
this package registers its subcommands on the single parser built here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from botkit import __version__
from botkit.cli import api, bench, cluster, deploy, models, monitor, quality, releases, serving, teaching
from botkit.cli._common import EXIT_USAGE, CommandError

__all__ = ["build_parser", "main"]

# Order of the help text: the model's life, serving it, watching it, deploying it, teaching it.
MODULES = (models, quality, serving, api, bench, monitor, deploy, cluster, releases, teaching)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="botkit", description=__doc__.splitlines()[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"botkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, parent=None) -> argparse.ArgumentParser:
        sp = (parent or sub).add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    for module in MODULES:
        module.register(add, sub)
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
        from botkit.core.config import settings

        if settings.from_env().debug:
            raise
        print(f"botkit: internal error: {type(exc).__name__}: {exc} (BOTKIT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
