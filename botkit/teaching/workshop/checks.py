"""Exercise checks that never raise: ``✅ done: ...`` or ``⏳ not yet: <hint>``, and the guard around them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CheckResult", "check", "done", "is_todo", "not_yet"]

_TODO_STRINGS = {"", "...", "todo", "tbd", "?"}


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one exercise step; shows itself as its message in a notebook."""

    step: str
    passed: bool
    message: str

    def __repr__(self) -> str:  # the last line of a notebook cell displays the message, once
        return self.message

    __str__ = __repr__

    def __bool__(self) -> bool:
        return self.passed


def done(step: str, detail: str) -> CheckResult:
    """A passed step: ``✅ done: <what was verified>``."""
    return CheckResult(step, True, f"✅ done: {detail}")


def not_yet(step: str, hint: str) -> CheckResult:
    """A missing or wrong step: ``⏳ not yet: <what to do next>``."""
    return CheckResult(step, False, f"⏳ not yet: {hint}")


def is_todo(value: object) -> bool:
    """True for an answer still left open: ``None``, ``...``, ``"TODO"``, or a container holding ``...``."""
    if value is None or value is Ellipsis:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _TODO_STRINGS
    if isinstance(value, Mapping):
        return any(v is Ellipsis for v in value.values())
    if isinstance(value, list | tuple | set):
        return any(v is Ellipsis for v in value)
    return False


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


def _safe(step: str) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Last line of defence: a bug or an odd input inside a check becomes a hint, never a traceback."""

    def wrap(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # the whole point: a check never raises
                return not_yet(step, f"the check could not read your answer ({_short(exc)}). Run the cells "
                                     "above from the top (Kernel → Restart and Run All) and try again.")
        return inner

    return wrap


def check(name: str, fn: Callable[[], object] | None, *, hint: str = "") -> CheckResult:
    """Run ``fn()`` as a check: ``assert`` messages and exceptions become hints.

    ``fn`` passes when it returns anything but ``False``. Use it for a step no dedicated check
    covers: ``check("audit log has the decision", lambda: log.entries()[-1]["action"] == "reject")``.
    """
    if is_todo(fn):
        return not_yet(name, hint or f"{name}: nothing to check yet; fill in the TODO above")
    if not callable(fn):
        return not_yet(name, f"{name}: expected a function to call, got {type(fn).__name__}")
    try:
        value = fn()
    except AssertionError as exc:
        return not_yet(name, f"{name}: {str(exc) or hint or 'an assertion failed'}")
    except Exception as exc:
        return not_yet(name, f"{name}: {_short(exc)}" + (f". {hint}" if hint else ""))
    if value is False:
        return not_yet(name, f"{name}: {hint or 'the condition is not met yet'}")
    return done(name, name)
