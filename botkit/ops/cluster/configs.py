"""Configuration files of the cluster's other parts: Redis (AOF), Prometheus, supervisord."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["PROGRAM_MARKER", "render_prometheus", "render_redis", "render_supervisord"]

#: Environment variable every process of a cluster carries (value: the cluster's folder), so
#: ``down`` can prove that nothing it started is left, and find strays by marker, not by name.
PROGRAM_MARKER = "BOTKIT_CLUSTER_DIR"


def render_redis(*, port: int, data_dir: Path, maxmemory_mb: int, appendfsync: str = "everysec") -> str:
    """Redis with the append-only file on: a write Redis acknowledged survives a Redis restart
    (``everysec``: at most one second lost on a crash of the host or of Redis itself).
    ``noeviction``: when memory is full a write fails loudly (the writer retries, the service
    answers 503) instead of Redis silently evicting events; the stream's own ``MAXLEN`` keeps it
    below the bound in normal operation."""
    return "\n".join([
        f"port {port}", "bind 127.0.0.1", "protected-mode yes", f"dir {data_dir}", "daemonize no",
        "appendonly yes", f"appendfsync {appendfsync}", 'save ""',
        f"maxmemory {maxmemory_mb}mb", "maxmemory-policy noeviction", "loglevel notice", ""])


def render_prometheus(*, replicas: list[tuple[str, int]], haproxy_port: int, rules: list[Path],
                      scrape_interval_s: int = 5) -> str:
    """Scrape every replica (labelled ``replica``) and HAProxy's exporter; load the alert rules."""
    lines = ["global:", f"  scrape_interval: {scrape_interval_s}s", f"  evaluation_interval: {scrape_interval_s}s",
             "rule_files:"]
    lines += [f"  - {p}" for p in rules] or ["  []"]
    lines += ["scrape_configs:", "  - job_name: botkit", "    static_configs:"]
    for name, port in replicas:
        lines += [f"      - targets: ['127.0.0.1:{port}']", f"        labels: {{replica: {name}}}"]
    lines += ["  - job_name: haproxy", "    static_configs:", f"      - targets: ['127.0.0.1:{haproxy_port}']", ""]
    return "\n".join(lines)


def render_supervisord(*, directory: Path, programs: dict[str, list[str]], stop_wait_s: dict[str, int]) -> str:
    """supervisord.conf: each program is its own process group, stopped and killed as a group
    (BentoML's arbiter has workers that must go with it), restarted when it dies."""
    logs = directory / "logs"
    out = [
        "[unix_http_server]", f"file={directory / 'supervisor.sock'}", "chmod=0700", "",
        "[supervisord]", f"logfile={logs / 'supervisord.log'}", f"pidfile={directory / 'supervisord.pid'}",
        f"childlogdir={logs}", "nodaemon=true", "loglevel=info", "",
        "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "", "[supervisorctl]", f"serverurl=unix://{directory / 'supervisor.sock'}", ""]
    for name, command in programs.items():
        out += [
            f"[program:{name}]", "command=" + " ".join(shlex.quote(c) for c in command).replace("%", "%%"),
            "autostart=true", "autorestart=true", "startsecs=1", "startretries=100",
            "stopasgroup=true", "killasgroup=true", "stopsignal=TERM", f"stopwaitsecs={stop_wait_s.get(name, 10)}",
            "redirect_stderr=true", f"stdout_logfile={logs / (name + '.log')}", "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=1", ""]
    return "\n".join(out)


def python() -> str:
    return sys.executable
