"""The cluster object: start, inspect, steer and stop N replicas behind HAProxy with Redis and Prometheus."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botkit.core.config import PACKAGE_DIR, settings
from botkit.ops.cluster.configs import PROGRAM_MARKER, render_prometheus, render_redis, render_supervisord
from botkit.ops.cluster.haproxy import StatsSocket, render_config
from botkit.serving.serve import Server, _tree, free_port

__all__ = ["ALERT_RULES", "Cluster", "ClusterError", "ReplicaSpec", "cluster_processes"]

ALERT_RULES = PACKAGE_DIR.parent / "deploy" / "prometheus" / "alerts.yml"
STATE_FILE = "cluster.json"
BINARIES = {"haproxy": "haproxy", "redis": "redis-server", "prometheus": "prometheus"}


class ClusterError(RuntimeError):
    """The cluster could not be started, found or steered; the message says what to do."""


@dataclass
class ReplicaSpec:
    """What one replica is: its name, port and model (``None``: the store's production model)."""

    name: str
    port: int
    model: str | None = None
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)  # this replica's own settings (e.g. a canary's)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """N botkit replicas, HAProxy, Redis (AOF) and Prometheus under one supervisord, on loopback.

    ``Cluster(replicas=3).start()`` or ``Cluster.attach()`` for one started earlier (by the CLI).
    """

    replicas: int = field(default_factory=lambda: settings.cluster_replicas)
    workers: int = field(default_factory=lambda: settings.cluster_workers)
    model: str | None = None
    directory: Path = field(default_factory=lambda: settings.home / "cluster")
    prometheus: bool = True
    env: dict[str, str] = field(default_factory=dict)
    lb_port: int = 0
    stats_port: int = 0
    redis_port: int = 0
    prometheus_port: int = 0
    specs: list[ReplicaSpec] = field(default_factory=list)
    supervisord_pid: int | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def haproxy_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/metrics"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def prometheus_url(self) -> str | None:
        return f"http://127.0.0.1:{self.prometheus_port}" if self.prometheus else None

    def replica(self, name: str) -> ReplicaSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise ClusterError(f"no replica {name!r}; replicas: {', '.join(s.name for s in self.specs)}")

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 180.0) -> Cluster:
        """Write the configs, start supervisord (which starts everything) and wait until every
        replica answers through HAProxy. Fails, after stopping what it started, otherwise."""
        missing = [b for k, b in BINARIES.items() if (k != "prometheus" or self.prometheus) and not shutil.which(b)]
        if missing:
            raise ClusterError(f"missing programs: {', '.join(missing)} (Debian: apt-get install {' '.join(missing)};"
                               " `make sysdeps`)")
        if self._alive(self._load_state_pid()):
            raise ClusterError(f"a cluster is already running in {self.directory}; `botkit cluster down` first")
        if self.replicas < 1:
            raise ClusterError("a cluster needs at least one replica")
        self.directory = self.directory.resolve()
        for sub in ("logs", "redis", "prometheus", "replicas"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self.lb_port = self.lb_port or free_port()
        self.stats_port = self.stats_port or free_port()
        self.redis_port = self.redis_port or free_port()
        self.prometheus_port = self.prometheus_port or (free_port() if self.prometheus else 0)
        self.specs = [ReplicaSpec(f"replica-{i + 1}", free_port(), self.model, self.workers)
                      for i in range(self.replicas)]
        self._write_configs()
        log = (self.directory / "logs" / "supervisord.out").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.directory / "supervisord.conf")],
            env={**os.environ, PROGRAM_MARKER: str(self.directory)}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.directory)
        log.close()
        self.supervisord_pid = proc.pid
        self._save_state()
        if self.prometheus:
            from botkit.ops.cluster.dashboard import write

            write(self.directory / "grafana", self.prometheus_url)
        try:
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout_s: float = 180.0, names: list[str] | None = None) -> None:
        """Until each replica (all, or ``names``) has every worker ready and HAProxy sees it UP."""
        deadline = time.monotonic() + timeout_s
        for spec in self.specs:
            if names is not None and spec.name not in names:
                continue
            self._wait(lambda s=spec: _http_ok(f"{s.url}/readyz"), deadline, f"{spec.name} /readyz")
            if spec.workers > 1:
                from botkit.serving.serve import wait_all_workers

                wait_all_workers(spec.url, spec.workers, max(1.0, deadline - time.monotonic()))
            self._wait(lambda s=spec: self._lb_states().get(s.name, "") in ("UP", "DRAIN"), deadline,
                       f"HAProxy health check of {spec.name}")
        self._wait(lambda: _http_ok(f"{self.lb_url}/readyz"), deadline, "HAProxy frontend")
        if self.prometheus:
            self._wait(lambda: _http_ok(f"{self.prometheus_url}/-/ready"), deadline, "Prometheus")

    def _wait(self, ok: Any, deadline: float, what: str) -> None:
        while not ok():
            if not self._alive(self.supervisord_pid):
                raise ClusterError(f"supervisord died while waiting for {what}; logs in {self.directory / 'logs'}")
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out waiting for {what}; logs in {self.directory / 'logs'}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 60.0) -> list[int]:
        """Stop supervisord (it stops every program as a group, replicas flushing their events),
        then kill anything still carrying this cluster's marker. Returns pids that had to be killed."""
        pid = self.supervisord_pid or self._load_state_pid()
        programs: list = []
        if self._alive(pid):
            with contextlib.suppress(Exception):  # Redis rewrites its environ: find programs by pid too
                programs = [p for info in self._rpc().supervisor.getAllProcessInfo() if info.get("pid")
                            for p in _tree(info["pid"])]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        killed = []
        for proc in {p.pid: p for p in [*programs, *cluster_processes(self.directory)]}.values():
            with contextlib.suppress(Exception):
                if not proc.is_running() or proc.status() == "zombie":
                    continue
                proc.kill()
                killed.append(proc.pid)
        with contextlib.suppress(ChildProcessError, OSError):
            if pid:
                os.waitpid(pid, os.WNOHANG)
        self.supervisord_pid = None
        with contextlib.suppress(FileNotFoundError):
            (self.directory / STATE_FILE).unlink()
        return killed

    def __enter__(self) -> Cluster:
        return self.start() if self.supervisord_pid is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def attach(cls, directory: Path | str | None = None) -> Cluster:
        """The cluster running in ``directory`` (default ``$BOTKIT_HOME/cluster``)."""
        directory = Path(directory or settings.home / "cluster").resolve()
        try:
            state = json.loads((directory / STATE_FILE).read_text())
        except FileNotFoundError:
            raise ClusterError(f"no cluster in {directory}: `botkit cluster up` first") from None
        state["specs"] = [ReplicaSpec(**s) for s in state["specs"]]
        state["directory"] = Path(state["directory"])
        return cls(**state)

    # ------------------------------------------------------------------ steering (HAProxy runtime API)
    @property
    def haproxy(self) -> StatsSocket:
        return StatsSocket(self.directory / "haproxy.sock")

    def set_weight(self, replica: str, weight: int) -> None:
        """Share of new requests, relative to the others (0..256; 100 by default, 0: none)."""
        self.replica(replica)
        self.haproxy.set_weight(replica, weight)

    def drain(self, replica: str) -> None:
        """No new requests for ``replica``; requests in flight finish."""
        self.replica(replica)
        self.haproxy.set_state(replica, "drain")

    def ready(self, replica: str) -> None:
        """Undo ``drain`` (or maintenance): the replica takes its share again once healthy."""
        self.replica(replica)
        self.haproxy.set_state(replica, "ready")

    def restart_replica(self, replica: str, model: str | None = None, *, env: dict[str, str] | None = None,
                        wait: bool = True, timeout_s: float = 120.0) -> None:
        """Restart one replica (optionally on another model, or with ``env`` replacing its own
        settings, e.g. ``{"BOTKIT_SHADOW_MODEL": tag}``): drain, stop (flushing), start, ready.

        The other replicas keep serving; HAProxy sends nothing to this one until it is healthy.
        Model and env stick to the replica across later restarts (supervisord's too).
        """
        spec = self.replica(replica)
        if model is not None or env is not None:
            spec.model = spec.model if model is None else model
            spec.env = spec.env if env is None else dict(env)
            self._write_replica_spec(spec)
            self._save_state()
        self.drain(replica)
        try:
            self._rpc().supervisor.stopProcess(replica, True)
            self._rpc().supervisor.startProcess(replica, False)
        finally:
            self.ready(replica)
        if wait:
            self.wait_healthy(timeout_s, names=[replica])

    def kill_replica(self, replica: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the replica's whole process group (kill -9 of a pod); returns its pid.
        supervisord restarts it."""
        pid = self.pid(replica)
        if not pid:
            raise ClusterError(f"{replica} is not running")
        tree = _tree(pid)  # BentoML workers live in sessions of their own: a pod kill takes them too
        for proc in tree:
            with contextlib.suppress(Exception):
                proc.send_signal(sig)
        return pid

    def pid(self, program: str) -> int:
        return int(self._rpc().supervisor.getProcessInfo(program)["pid"])

    def stop_program(self, program: str) -> None:
        self._rpc().supervisor.stopProcess(program, True)

    def start_program(self, program: str) -> None:
        self._rpc().supervisor.startProcess(program, True)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """Everything ``botkit cluster status --json`` prints: addresses, replicas, programs."""
        programs = {p["name"]: p for p in self._rpc().supervisor.getAllProcessInfo()}
        lb = self._lb_servers()
        replicas = []
        for spec in self.specs:
            info = programs.get(spec.name, {})
            server = lb.get(spec.name)
            replicas.append({
                "name": spec.name, "url": spec.url, "port": spec.port, "pid": info.get("pid") or None,
                "state": info.get("statename", "UNKNOWN"), "model": _served_model(spec.url) or spec.model,
                "healthy": _http_ok(f"{spec.url}/readyz"), "lb_status": server.status if server else "UNKNOWN",
                "weight": server.weight if server else None, "workers": spec.workers})
        services = [{"name": n, "pid": p.get("pid") or None, "state": p.get("statename")}
                    for n, p in programs.items() if not n.startswith("replica-")]
        return {"directory": str(self.directory), "supervisord_pid": self.supervisord_pid,
                "lb_url": self.lb_url, "haproxy_metrics_url": self.haproxy_metrics_url,
                "redis_url": self.redis_url, "prometheus_url": self.prometheus_url,
                "replicas": replicas, "services": services}

    def _lb_servers(self) -> dict:
        try:
            return self.haproxy.servers()
        except OSError:
            return {}

    def _lb_states(self) -> dict[str, str]:
        return {n: s.status for n, s in self._lb_servers().items()}

    def _rpc(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.directory / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    # ------------------------------------------------------------------ files
    def replica_env(self, spec: ReplicaSpec) -> tuple[list[str], dict[str, str]]:
        env = {"BOTKIT_EVENTS_BACKEND": "redis", "BOTKIT_REDIS_URL": self.redis_url, **self.env, **spec.env}
        server = Server(model=spec.model, port=spec.port, workers=spec.workers, env=env)
        inherited = {**os.environ}  # supervisord passes its own environment on; write only what differs
        return server.command(), {k: v for k, v in server.environment().items()
                                  if k.startswith("BOTKIT_") or inherited.get(k) != v}

    def _write_replica_spec(self, spec: ReplicaSpec) -> Path:
        command, env = self.replica_env(spec)
        path = self.directory / "replicas" / f"{spec.name}.json"
        path.write_text(json.dumps({"command": command, "env": env}, indent=1))
        path.chmod(0o600)
        return path

    def _write_configs(self) -> None:
        d = self.directory
        lb = [(s.name, s.port) for s in self.specs]
        (d / "haproxy.cfg").write_text(render_config(lb_port=self.lb_port, stats_port=self.stats_port,
                                                     socket_path=d / "haproxy.sock", replicas=lb))
        (d / "redis.conf").write_text(render_redis(port=self.redis_port, data_dir=d / "redis",
                                                   maxmemory_mb=settings.redis_maxmemory_mb))
        programs: dict[str, list[str]] = {
            "redis": [shutil.which("redis-server") or "redis-server", str(d / "redis.conf")],
            "haproxy": [shutil.which("haproxy") or "haproxy", "-db", "-f", str(d / "haproxy.cfg")],
        }
        if self.prometheus:
            rules = [ALERT_RULES] if ALERT_RULES.exists() else []
            (d / "prometheus.yml").write_text(render_prometheus(replicas=lb, haproxy_port=self.stats_port,
                                                                rules=rules))
            programs["prometheus"] = [
                shutil.which("prometheus") or "prometheus", f"--config.file={d / 'prometheus.yml'}",
                f"--storage.tsdb.path={d / 'prometheus'}", f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                "--storage.tsdb.retention.time=1d", "--log.level=warn"]
        for spec in self.specs:
            programs[spec.name] = [sys.executable, "-m", "botkit.ops.cluster.launch",
                                   str(self._write_replica_spec(spec))]
        stop_wait = {s.name: int(settings.events_flush_bound_s) + 10 for s in self.specs}
        (d / "supervisord.conf").write_text(render_supervisord(directory=d, programs=programs,
                                                               stop_wait_s=stop_wait))

    def _save_state(self) -> None:
        state = asdict(self)
        state["directory"] = str(self.directory)
        (self.directory / STATE_FILE).write_text(json.dumps(state, indent=1))

    def _load_state_pid(self) -> int | None:
        try:
            return json.loads((Path(self.directory) / STATE_FILE).read_text()).get("supervisord_pid")
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def _alive(pid: int | None) -> bool:
        if not pid:
            return False
        try:
            import psutil

            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except Exception:
            return False


def cluster_processes(directory: Path | str) -> list:
    """Every live process that carries the marker of the cluster in ``directory``."""
    import psutil

    marker = str(Path(directory).resolve())
    found = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(PROGRAM_MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def _http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _served_model(url: str) -> str | None:
    """The model version a replica reports in ``botkit_model_info`` (None if it does not answer)."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=2) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith("botkit_model_info{") and 'model_version="' in line:
            return line.split('model_version="', 1)[1].split('"', 1)[0]
    return None
