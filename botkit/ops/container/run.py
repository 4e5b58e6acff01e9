"""Run an image with ``buildah run`` on loopback, wait until ready, stop BentoML's arbiter gracefully."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botkit.serving.serve import ServerError, free_port, wait_ready

if TYPE_CHECKING:
    pass

from botkit.ops.container.tools import ENTRYPOINT, KEEP_RUN_LOGS, _env, _last_line, _run, cache_dir, require_tools

__all__ = ["RunningImage", "run_image"]

# ------------------------------------------------------------------------------------ run


@dataclass
class RunningImage:
    image: str
    container: str
    port: int
    log_path: Path
    proc: subprocess.Popen
    ready_seconds: float = 0.0
    stopped_gracefully: bool | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from ``/proc``), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(0), [])
        out.extend(kids)
        todo.extend(kids)
    return out


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_arbiter(pid: int) -> bool:
    """``.../bentoml serve ...`` itself (not ``buildah-chroot-exec .../entrypoint.sh serve``)."""
    argv = _argv(pid)
    return any(Path(a).name == "bentoml" and b == "serve" for a, b in itertools.pairwise(argv))


def _alive(pids: Sequence[int]) -> list[int]:
    """The pids still running (zombies, exited but not yet reaped, count as gone)."""
    out = []
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.append(pid)
    return out


def _stop(proc: subprocess.Popen, grace_s: float) -> bool:
    """SIGTERM the BentoML arbiter inside the container; True when everything exited within ``grace_s``.

    Not SIGTERM to ``buildah run``: it SIGKILLs its child, and BentoML's workers (each in a session
    of its own) outlive it as orphans. The arbiter stops its workers and exits, then ``buildah run``
    returns. Whatever is left after the grace period is SIGKILLed, pid by pid.
    """
    tree = _descendants(proc.pid)
    for pid in [p for p in tree if _is_arbiter(p)] or [proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (proc.poll() is None or _alive(tree)):
        time.sleep(0.1)
    graceful = proc.poll() is not None and not _alive(tree)
    if not graceful:
        for pid in [proc.pid, *_alive(tree)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    return graceful


@contextlib.contextmanager
def run_image(image: str, port: int | None = None, *, ready_timeout_s: float = 120.0, stop_grace_s: float = 20.0,
              env: dict[str, str] | None = None, cache: Path | None = None) -> Iterator[RunningImage]:
    """Run ``image``'s BentoML server on 127.0.0.1:``port`` (free port if None) until the block ends.

    ``buildah from`` + ``buildah run`` (chroot isolation: the host's network namespace, so loopback
    reaches it); waits for ``/readyz``; on exit SIGTERM, SIGKILL after ``stop_grace_s``, ``buildah rm``.
    """
    require_tools()
    cache = cache or cache_dir()
    benv = _env(cache)
    port = port or free_port()
    name = f"botkit-run-{os.getpid()}-{port}"
    subprocess.run(["buildah", "rm", name], env=benv, capture_output=True, timeout=120)  # a leftover, if any
    _run("run", ["buildah", "from", "--pull=never", "--name", name, image], env=benv, timeout=300)
    log_path = cache / "logs" / f"run-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for old in sorted(log_path.parent.glob("run-*.log"), key=lambda p: p.stat().st_mtime)[:-KEEP_RUN_LOGS]:
        old.unlink(missing_ok=True)
    extra = [a for k, v in (env or {}).items() for a in ("--env", f"{k}={v}")]
    cmd = ["buildah", "run", "--isolation", "chroot", *extra, name, "--",
           ENTRYPOINT, "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc, running = None, None
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, env=benv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        running = RunningImage(image, name, port, log_path, proc)
        try:
            running.ready_seconds = wait_ready(running.url, ready_timeout_s, proc)
        except ServerError as exc:
            tail = _last_line(log_path.read_text(errors="replace"))
            raise RuntimeError(f"run: {exc}; last log line: {tail} (log: {log_path})") from None
        yield running
    finally:
        if proc is not None:
            graceful = _stop(proc, stop_grace_s)
            if running is not None:
                running.stopped_gracefully = graceful
        subprocess.run(["buildah", "rm", name], env=benv, capture_output=True, timeout=120)

