"""The parts of ``botkit workshop check`` that prove the day will work, not only that packages import.

Why: a laptop can import every package and still fail at 9:40 in the room, because the venv is
not the one JupyterLab uses, the kernel is missing, or a firewall stops a server on loopback. So
the check trains a real (small) bot in a throw-away home and asks it one question over HTTP on
127.0.0.1, in a child process so that this process's settings stay untouched.

Optional parts (system tools participants may lack, and need no root to do without) are listed
as lines that never fail the check: each names the exercises and notebook sections that need it.
Everything here is portable (``shutil.which``, sockets, child processes): no ``/proc``, no apt,
nothing Linux-only, so the same check runs on macOS and in WSL2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from botkit.teaching.workshop.checks import _short

__all__ = ["OPTIONAL_PARTS", "OptionalPart", "check_bot_answers", "check_kernel", "check_venv", "optional_lines"]


@dataclass(frozen=True)
class OptionalPart:
    """A system tool the workshop can do without: what it is, how to get it, and who needs it."""

    name: str
    commands: tuple[str, ...]  # all must be on the PATH
    needed_by: str
    install: str


OPTIONAL_PARTS = (
    OptionalPart("container proof", ("buildah", "debootstrap"),
                 "notebook 03 section 'build and run the image' (`make container`); exercise 07 reads the manifests "
                 "without it", "Debian/Ubuntu: apt install buildah debootstrap (root); macOS: not needed, the "
                 "committed outputs show it"),
    OptionalPart("Prometheus (promtool)", ("promtool",),
                 "notebook 05 section 3 (alert rule unit tests) and 08's Prometheus panel; exercise 04 works without",
                 "Debian: apt install prometheus; macOS: brew install prometheus"),
    OptionalPart("Chromium", ("chromium",),
                 "only the maintainers' JupyterLab screenshot test; no exercise needs it",
                 "Debian: apt install chromium; macOS: any browser is fine for the workshop"),
    OptionalPart("cluster (HAProxy, Redis)", ("haproxy", "redis-server"),
                 "notebook 08 and `botkit cluster` (replicas, drill, rolling update, canary); exercise 07's canary "
                 "step; without them notebook 08 shows its committed outputs",
                 "Debian: apt install haproxy redis-server; macOS: brew install haproxy redis"),
)


def check_venv() -> tuple[bool, str]:
    """Does botkit run from a virtual or conda environment (not the system Python)?"""
    if sys.prefix != sys.base_prefix:
        return True, f"venv {_home_relative(Path(sys.prefix))}"
    if (Path(sys.prefix) / "conda-meta").is_dir():
        return True, f"conda environment {_home_relative(Path(sys.prefix))}"
    return False, (f"botkit runs from the system Python ({sys.prefix}): create .venv with `make setup` "
                   "(or `conda env create -f environment.yml`) and run `.venv/bin/botkit workshop check`")


def check_kernel() -> tuple[bool, str]:
    """Is there a ``python3`` Jupyter kernel, and does it start this environment's Python?"""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False, "no `python3` Jupyter kernel: run `.venv/bin/python -m ipykernel install --sys-prefix`"
    exe = spec.argv[0] if spec.argv else ""
    found = shutil.which(exe) if exe and not os.path.isabs(exe) else exe
    same = bool(found) and Path(found).resolve() == Path(sys.executable).resolve()
    if exe in ("python", "python3") or same:  # ipykernel's own spec starts the Python running Jupyter
        return True, f"python3 kernel ({spec.display_name}) runs this environment's Python"
    return False, (f"the python3 kernel starts {exe}, not this environment's Python: run "
                   "`.venv/bin/python -m ipykernel install --sys-prefix` (or remove the stale kernel with "
                   "`jupyter kernelspec remove python3`)")


_CHILD = r"""
import json, sys, time, urllib.request
t0 = time.monotonic()
from botkit.ops.pipeline import train_evaluate_register
from botkit.core.registry import set_stage
from botkit.serving.serve import Server
bot = train_evaluate_register()
set_stage(bot.tag, "production")
t1 = time.monotonic()
with Server(workers=1, batching=False) as srv:
    t2 = time.monotonic()
    req = urllib.request.Request(srv.url + "/chat", data=json.dumps({"message": sys.argv[1]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.load(r)
print(json.dumps({"acc": bot.evaluation.metrics["in_scope_accuracy"], "train_s": t1 - t0,
                  "start_s": t2 - t1, "intent": answer["intent"], "latency_ms": answer["latency_ms"]}))
"""

QUESTION = "where is my order, it has not arrived"


def check_bot_answers(timeout_s: float = 180.0) -> tuple[bool, str]:
    """Train a bot in a throw-away home, serve it on 127.0.0.1 and ask it one question."""
    with tempfile.TemporaryDirectory(prefix="botkit-check-") as tmp:
        env = {**os.environ, "BOTKIT_HOME": tmp, "BENTOML_HOME": str(Path(tmp) / "bentoml"),
               "BOTKIT_REPORTS_DIR": str(Path(tmp) / "reports"), "BENTOML_DO_NOT_TRACK": "true"}
        env.pop("BOTKIT_MODEL_TAG", None)
        t0 = time.monotonic()
        try:
            r = subprocess.run([sys.executable, "-c", _CHILD, QUESTION], capture_output=True, text=True,
                               timeout=timeout_s, env=env, stdin=subprocess.DEVNULL, cwd=tmp)
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"could not train and serve a bot within {timeout_s:.0f} s ({_short(exc)})"
        took = time.monotonic() - t0
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        err = [ln for ln in r.stderr.splitlines() if ln.strip() and "Location 'file:" not in ln]
        reason = err[-1] if err else f"exit code {r.returncode}"
        return False, (f"training or serving a bot failed: {reason}. If it mentions a port or connection, a "
                       "firewall or VPN blocks servers on 127.0.0.1: ask the room's IT contact")
    got = json.loads(lines[-1])
    return True, (f"trained a bot (in-scope accuracy {got['acc']:.2f}) in {got['train_s']:.0f} s, served it on "
                  f"127.0.0.1 in {got['start_s']:.0f} s; it answered {QUESTION!r} with `{got['intent']}` "
                  f"({took:.0f} s in all)")


def optional_lines() -> list[tuple[str, bool, str]]:
    """(name, present, detail) for every optional part; a missing one says who needs it and how to get it."""
    out = []
    for part in OPTIONAL_PARTS:
        missing = [c for c in part.commands if shutil.which(c) is None]
        if not missing:
            out.append((part.name, True, f"found ({', '.join(part.commands)})"))
        else:
            out.append((part.name, False, f"missing {', '.join(missing)}; needed by {part.needed_by}. "
                                          f"To add it: {part.install}"))
    return out


def _home_relative(path: Path) -> str:
    """A path as ``~/...`` when it is under the user's home (shorter, and no user name on a shared screen)."""
    try:
        return "~/" + str(path.resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)
