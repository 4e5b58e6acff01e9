"""Run the BentoML service as a child process on loopback, and always stop it.

`botkit serve`, `make run`, the load tests, the benchmark, the notebooks and the test suite
all start servers the same way, through ``Server``: a free port, the project's environment,
a wait on ``/readyz``, and a stop that takes the whole process group down even when the
caller fails half-way (context manager, plus an ``atexit`` guard).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from botkit.core.config import settings

__all__ = ["Server", "ServerError", "die_with_parent", "free_port", "post_json", "wait_all_workers", "wait_ready"]


class ServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``PR_SET_PDEATHSIG``).

    BentoML's workers run in sessions of their own, so killing the arbiter's process group
    (``kill -9`` of a replica, a crashed ``botkit serve``) used to leave them serving on the
    inherited socket. Each worker calls this at import: SIGTERM lets it flush its events. Only
    for processes whose parent never ends a thread that started them (BentoML's arbiter).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(1, int(sig), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False
    if ok and os.getppid() == 1:  # the parent died before prctl: nobody will tell us
        os.kill(os.getpid(), sig)
    return ok


def _tree(pid: int) -> list:
    """The process and every descendant, including BentoML workers in sessions of their own."""
    try:
        import psutil

        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except Exception:
        return []


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout_s: float = 60.0, proc: subprocess.Popen | None = None) -> float:
    """Poll ``/readyz`` until 200; returns seconds waited. Fails fast when the process died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"server exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError), \
                urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
            if r.status == 200:
                return time.monotonic() - start
        time.sleep(0.1)
    raise ServerError(f"{url} not ready after {timeout_s:.0f} s")


def post_json(url: str, payload: dict, timeout_s: float = 10.0) -> tuple[int, dict]:
    """POST JSON, return (status, parsed body); 4xx/5xx are returned, not raised."""
    import json

    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"error": body.decode(errors="replace")}


def wait_all_workers(url: str, workers: int, timeout_s: float = 90.0, burst: int = 16) -> None:
    """Block until every worker of the botkit server at ``url`` is ready to answer.

    The first ``/readyz`` 200 proves only one worker ready:
    each worker loads the model on its own, and a request that reaches one still loading gets
    503. BentoML stamps ``bentoml_service_last_request_timestamp_seconds`` per worker pid, but
    not for ``/readyz``, so the probe is ``POST /feedback`` for an unknown request id: 404 from
    a ready worker, 503 from a loading one, and nothing is stored. Ready means a burst on fresh
    connections got only 404s and every worker's pid was stamped inside that burst.
    """
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    probe = {"request_id": "readiness-probe", "rating": "up"}
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=burst)
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=10, limits=limits) as c, ThreadPoolExecutor(8) as pool:
        while True:
            started = time.time()
            codes = list(pool.map(lambda _: c.post("/feedback", json=probe).status_code, range(burst)))
            ended = time.time()
            if set(codes) == {404}:
                pids = {s.labels.get("pid") for family in text_string_to_metric_families(c.get("/metrics").text)
                        if family.name == "bentoml_service_last_request_timestamp_seconds"
                        for s in family.samples if started <= s.value <= ended}
                if len(pids) >= workers:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {workers} workers of {url} ready after {timeout_s:.0f} s: {codes}")
            time.sleep(0.2)


@dataclass
class Server:
    """``with Server(workers=2) as s: requests.post(s.url + "/chat", ...)``."""

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    workers: int | None = None
    batching: bool | None = None
    access_log: bool | None = None
    env: dict[str, str] = field(default_factory=dict)
    target: str = "botkit.serving.service:Chat"
    log_path: Path | None = None
    ready_timeout_s: float = 90.0
    all_workers: bool = True  # wait until every worker has loaded the model, not just the first
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        bentoml = Path(sys.executable).with_name("bentoml")
        exe = [str(bentoml)] if bentoml.exists() else [sys.executable, "-m", "bentoml"]
        return [*exe, "serve", self.target, "--host", self.host, "--port", str(self.port)]

    def environment(self) -> dict[str, str]:
        env = {**os.environ, **settings.env()}
        overrides = {"MODEL_TAG": self.model, "WORKERS": self.workers, "BATCHING": self.batching,
                     "ACCESS_LOG": self.access_log}
        for key, value in overrides.items():
            if value is not None:
                env[f"BOTKIT_{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
        env.update(self.env)
        env["BENTOML_HOME"] = str(self._private_home(Path(env["BENTOML_HOME"])))
        return env

    def _private_home(self, shared: Path) -> Path:
        """A BentoML home of this server's own that sees the shared model store.

        BentoML keeps Prometheus' multiprocess files in ``$BENTOML_HOME`` and wipes them when any
        server starts, so two servers on one home would silently lose each other's metrics.
        """
        home = settings.home / "servers" / str(self.port)
        home.mkdir(parents=True, exist_ok=True)
        (shared / "models").mkdir(parents=True, exist_ok=True)
        link = home / "models"
        if link.is_symlink() and link.resolve() != (shared / "models").resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to((shared / "models").resolve(), target_is_directory=True)
        return home

    def start(self, wait: bool = True) -> Server:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ServerError(f"refusing to bind {self.host}: botkit's servers listen on loopback only")
        self.port = self.port or free_port(self.host)
        if self.log_path is None:
            self.log_path = settings.home / "logs" / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        atexit.register(self.stop)
        if wait:
            try:
                wait_ready(self.url, self.ready_timeout_s, self.proc)
                workers = self.workers or settings.workers
                if self.all_workers and workers > 1:
                    wait_all_workers(self.url, workers, self.ready_timeout_s)
            except (ServerError, TimeoutError) as exc:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"{exc}; log {self.log_path}:\n{tail}") from None
        return self

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AttributeError):
            return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the process group (graceful: workers flush their events), SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        tree = _tree(proc.pid) if proc.poll() is None else []
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for child in tree[1:]:  # workers live in sessions of their own: make sure none outlives the arbiter
            with contextlib.suppress(Exception):
                child.wait(2)
            with contextlib.suppress(Exception):
                child.kill()
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        return proc.returncode

    def run_until_signal(self, on_ready: Callable[[Server], None] | None = None) -> int | None:
        """Start (if needed) and block until the server exits or SIGTERM/SIGINT arrives, then stop
        the whole tree; returns the server's exit code when it stopped by itself, else None.

        The handlers are in place before the server starts, so a signal during startup stops it
        too. SIGINT is handled explicitly: a shell's background job would otherwise ignore it.
        """
        stopping = threading.Event()
        starting = True

        def _on_signal(signum: int, frame: object) -> None:
            stopping.set()
            if starting:
                raise KeyboardInterrupt  # leave start()'s waits at once

        previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            try:
                if self.proc is None:
                    self.start()
                starting = False
                if on_ready is not None and not stopping.is_set():
                    on_ready(self)
            except KeyboardInterrupt:
                return None
            while not stopping.is_set():
                code = self.proc.poll()
                if code is not None:
                    self.stop()
                    return code
                stopping.wait(0.2)
            return None
        finally:
            starting = False
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def __enter__(self) -> Server:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
