"""``botkit workshop check``: is this laptop ready? One green or red line per item, with the fix."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from botkit.teaching.workshop.checks import _short

__all__ = ["CheckLine", "format_lines", "machine_check"]

# ----------------------------------------------------------------------------- machine check


@dataclass(frozen=True)
class CheckLine:
    """One line of ``botkit workshop check``: what, ok or not, and why."""

    name: str
    ok: bool
    detail: str
    optional: bool = False  # a missing optional part is shown, never counted as a failure


_PACKAGES = (("bentoml", "bentoml"), ("sklearn", "scikit-learn"), ("papermill", "papermill"),
             ("matplotlib", "matplotlib"), ("jupyterlab", "jupyterlab"))


def _lock_pins() -> dict[str, str]:
    from botkit.core.config import PACKAGE_DIR

    lock = PACKAGE_DIR.parent / "requirements" / "dev.lock"
    pins = {}
    with contextlib.suppress(OSError):
        for line in lock.read_text(encoding="utf-8").splitlines():
            m = re.match(r"([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)", line)  # "name==1.2 \" (hashes follow)
            if m:
                pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def _version_line(module: str, dist: str, version: str, pins: dict[str, str]) -> CheckLine:
    pinned = pins.get(dist)
    if pinned and pinned != version:
        return CheckLine(module, False, f"{dist} {version} is installed but requirements/dev.lock pins {pinned}: "
                                        "run `make setup` (or pip install --require-hashes -r requirements/dev.lock)")
    return CheckLine(module, True, f"{dist} {version}" + (" (as pinned)" if pinned else ""))


def _check_python() -> CheckLine:
    v = sys.version_info
    found = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if (v.major, v.minor) == (3, 11):
        return CheckLine("python", True, found)
    return CheckLine("python", False, f"{found}: botkit needs Python 3.11; create .venv with python3.11 "
                                      "(`make setup PYTHON=python3.11`)")


def _check_package(module: str, dist: str, pins: dict[str, str]) -> CheckLine:
    try:
        importlib.import_module(module)
        version = metadata.version(dist)
    except Exception as exc:  # a broken install raises anything
        return CheckLine(module, False, f"cannot import {module} ({_short(exc)}): run `make setup`")
    return _version_line(module, dist, version, pins)


def _check_locust_import(pins: dict[str, str]) -> CheckLine:
    # Never import Locust here: its gevent monkey-patching hangs a Jupyter kernel (Locust #2770).
    code = "import locust, sys; sys.stdout.write(locust.__version__)"
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckLine("locust", False, f"could not start Python to import locust ({_short(exc)})")
    if r.returncode != 0:
        err = (r.stderr or "").strip().splitlines()
        return CheckLine("locust", False, f"cannot import locust ({err[-1] if err else 'exit ' + str(r.returncode)}): "
                                          "run `make setup`")
    return _version_line("locust", "locust", r.stdout.strip(), pins)


def _can_listen(port: int) -> int | None:
    """The port bound on 127.0.0.1 (0: any free one), or None when it is taken."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        s.listen(1)
        return s.getsockname()[1]


def _check_port() -> CheckLine:
    from botkit.core.config import settings

    try:
        port = _can_listen(0)
    except OSError as exc:
        port, reason = None, _short(exc)
    else:
        reason = "no free port"
    if port is None:
        return CheckLine("free port", False, f"cannot listen on 127.0.0.1 ({reason}): a firewall or sandbox "
                                             "blocks loopback servers; ask the room's IT contact")
    # Notebooks and `make run` pick a free port each time; only `botkit serve` defaults to settings.port.
    default = settings.port
    note = (f"{default} (`botkit serve`'s default) is free" if _can_listen(default) is not None else
            f"{default} (`botkit serve`'s default) is taken: use `botkit serve --port N` or stop what holds it")
    return CheckLine("free port", True, f"127.0.0.1:{port} can listen; {note}")


def _check_store() -> CheckLine:
    from botkit.core.config import settings

    home = settings.bentoml_home
    made = [p for p in (home, *home.parents) if not p.exists()]  # folders this check creates, and removes
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".botkit-write-check-", dir=home)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return CheckLine("model store", False, f"cannot write to BENTOML_HOME={home} ({_short(exc)}): "
                                               "point BENTOML_HOME at a folder you own, or unset it")
    finally:
        for p in made:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
    note = " (created on first use)" if made else ""
    return CheckLine("model store", True, f"BENTOML_HOME={home} is writable{note}")


def _check_notebooks(timeout_s: float) -> CheckLine:
    import nbformat

    with tempfile.TemporaryDirectory(prefix="botkit-nbcheck-") as tmp:
        src, out = Path(tmp) / "check.ipynb", Path(tmp) / "check.out.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("answer = 0", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell("print('notebook says', answer + 1)")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src)
        exe = Path(sys.executable).with_name("papermill")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "papermill"]
        cmd += [str(src), str(out), "-p", "answer", "41", "-k", "python3", "--no-progress-bar", "--cwd", tmp]
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return CheckLine("notebooks", False, f"papermill did not finish ({_short(exc)})")
        took = time.monotonic() - t0
        text = out.read_text(encoding="utf-8") if out.exists() else ""
        if r.returncode != 0 or "notebook says 42" not in text:
            err = [ln for ln in (r.stderr or "").splitlines() if ln.strip() and "Location 'file:" not in ln]
            reason = err[-1] if err else f"exit code {r.returncode}"
            if "kernel" in reason.lower():
                reason += " (install the kernel: python -m ipykernel install --sys-prefix)"
            return CheckLine("notebooks", False, f"papermill could not run a test notebook: {reason}")
    return CheckLine("notebooks", True, f"papermill ran a test notebook with the python3 kernel in {took:.1f} s")


def _check_locust_cli() -> CheckLine:
    exe = Path(sys.executable).with_name("locust")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "locust"]
    try:
        r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckLine("locust command", False, f"cannot run locust ({_short(exc)}): run `make setup`")
    out = (r.stdout + r.stderr).strip().splitlines()
    if r.returncode != 0:
        return CheckLine("locust command", False, f"`locust --version` failed: {out[-1] if out else r.returncode}")
    return CheckLine("locust command", True, f"`locust --version` runs ({out[0].split(' from ')[0] if out else 'ok'})")


def machine_check(*, timeout_s: float = 180.0, bot: bool = True) -> list[CheckLine]:
    """Is this machine ready for the workshop? One line per item, then the optional parts.

    Checks run in parallel threads (the slow ones are child processes) and never raise: a
    failing item is a red line with the reason and the fix. ``bot`` trains a small bot in a
    throw-away home and asks it one question on loopback (about 15 s); optional system tools
    (container proof, Prometheus, Chromium, HAProxy/Redis) come last and never fail the check.
    """
    from concurrent.futures import ThreadPoolExecutor

    from botkit.teaching.workshop import readiness

    def line(name: str, fn: Callable[[], tuple[bool, str]]) -> Callable[[], CheckLine]:
        return lambda: CheckLine(name, *fn())

    pins = _lock_pins()
    jobs: list[Callable[[], CheckLine]] = [
        _check_python,
        line("environment", readiness.check_venv),
        *(functools.partial(_check_package, m, d, pins) for m, d in _PACKAGES),
        functools.partial(_check_locust_import, pins),
        line("kernel", readiness.check_kernel),
        _check_port,
        _check_store,
        functools.partial(_check_notebooks, timeout_s),
        _check_locust_cli,
    ]
    names = ["python", "environment", *(m for m, _ in _PACKAGES), "locust", "kernel", "free port", "model store",
             "notebooks", "locust command"]
    if bot:
        jobs.append(line("bot on loopback", functools.partial(readiness.check_bot_answers, timeout_s)))
        names.append("bot on loopback")

    def safe(i: int) -> CheckLine:
        try:
            return jobs[i]()
        except Exception as exc:
            return CheckLine(names[i], False, f"the check itself failed: {_short(exc)}")

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="machine-check") as pool:
        lines = list(pool.map(safe, range(len(jobs))))
    return lines + [CheckLine(name, ok, detail, optional=True) for name, ok, detail in readiness.optional_lines()]


def format_lines(lines: Sequence[CheckLine], color: bool = False) -> str:
    """``✔``/``✘`` lines (green/red when ``color``), ``○`` for a missing optional part, and a verdict."""
    green, red, dim, reset = ("\033[32m", "\033[31m", "\033[2m", "\033[0m") if color else ("", "", "", "")
    required = [ln for ln in lines if not ln.optional]
    optional = [ln for ln in lines if ln.optional]
    width = max((len(ln.name) for ln in required), default=0)

    def mark(ln: CheckLine) -> str:
        if ln.ok:
            return f"{green}✔{reset}"
        return f"{dim}○{reset}" if ln.optional else f"{red}✘{reset}"

    out = [f"{mark(ln)} {ln.name:<{width}}  {ln.detail}" for ln in required]
    if optional:
        out.append("optional (never required; without them these parts show their committed outputs):")
        width = max(len(ln.name) for ln in optional)
        out += [f"{mark(ln)} {ln.name:<{width}}  {ln.detail}" for ln in optional]
    bad = sum(not ln.ok for ln in required)
    absent = sum(not ln.ok for ln in optional)
    extra = f"; {absent} optional part{'s' if absent != 1 else ''} missing (○ lines)" if absent else ""
    out.append(f"{green}all {len(required)} required checks passed: ready for the workshop{extra}{reset}" if not bad
               else f"{red}{bad} of {len(required)} required checks failed: fix the ✘ lines (workshops/README.md, "
                    f"'Common mistakes') before the workshop{reset}")
    return "\n".join(out)
