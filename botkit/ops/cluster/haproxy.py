"""HAProxy in front of the replicas: its configuration and its runtime API (the stats socket).

Why the runtime API rather than reloads: weights, drains and maintenance change on the live
process in microseconds, without dropping a connection, which is what rolling updates and
canaries (``botkit.ops.cluster.Cluster.set_weight`` / ``drain`` / ``ready``) build on.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BACKEND", "StatsSocket", "render_config"]

BACKEND = "replicas"


def render_config(*, lb_port: int, stats_port: int, socket_path: Path,
                  replicas: list[tuple[str, int]], check_interval_ms: int = 500) -> str:
    """haproxy.cfg for loopback replicas ``[(name, port), ...]``.

    * health checks on ``/readyz`` every ``check_interval_ms`` (2 failures: down, 2 passes: up);
    * L7 retries (``retry-on conn-failure empty-response response-timeout``) with redispatch,
      so a request that never reached a live replica is sent to another one; the body is
      buffered first (``http-buffer-request``) because HAProxy retries only what it holds whole;
    * the Prometheus exporter on ``stats_port`` (``/metrics``), and the admin stats socket.
    """
    fast = max(check_interval_ms // 2, 100)
    servers = "\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in replicas)
    return f"""# written by botkit.ops.cluster: edit the code, not this file
global
    stats socket {socket_path} mode 600 level admin
    stats timeout 10s
    maxconn 4096

defaults
    mode http
    option http-buffer-request
    timeout connect 1s
    timeout client 60s
    timeout server 30s
    timeout queue 10s
    timeout http-request 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend botkit
    bind 127.0.0.1:{lb_port}
    default_backend {BACKEND}

frontend monitoring
    bind 127.0.0.1:{stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats
    stats refresh 5s

backend {BACKEND}
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter {check_interval_ms}ms fastinter {fast}ms downinter {check_interval_ms}ms \
fall 2 rise 2 weight 100
{servers}
"""


@dataclass(frozen=True)
class ServerState:
    """One backend server as HAProxy sees it (``show stat``)."""

    name: str
    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2" while changing
    weight: int
    current_sessions: int
    total_sessions: int
    check_status: str


class StatsSocket:
    """The admin stats socket: one command per connection, answers as text."""

    def __init__(self, path: Path, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout_s)
            s.connect(str(self.path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def _checked(self, line: str) -> None:
        answer = self.command(line).strip()
        if answer:  # HAProxy answers nothing on success, an explanation on failure
            raise RuntimeError(f"haproxy refused {line!r}: {answer}")

    def servers(self) -> dict[str, ServerState]:
        text = self.command("show stat").lstrip("# ")
        out: dict[str, ServerState] = {}
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("pxname") != BACKEND or row.get("svname") in ("FRONTEND", "BACKEND"):
                continue
            out[row["svname"]] = ServerState(
                name=row["svname"], status=row["status"], weight=int(row["weight"] or 0),
                current_sessions=int(row["scur"] or 0), total_sessions=int(row["stot"] or 0),
                check_status=row.get("check_status", ""))
        return out

    def set_weight(self, server: str, weight: int) -> None:
        if not 0 <= weight <= 256:
            raise ValueError("HAProxy weights are 0..256")
        self._checked(f"set server {BACKEND}/{server} weight {weight}")

    def set_state(self, server: str, state: str) -> None:
        if state not in ("ready", "drain", "maint"):
            raise ValueError("state is ready, drain or maint")
        self._checked(f"set server {BACKEND}/{server} state {state}")
