"""Rolling update of the local cluster: one replica at a time, no request lost.

For each replica: drain it in HAProxy (stats socket: no new requests), wait until HAProxy counts
no request in flight to it, restart it on the new model (its events flushed on SIGTERM), wait for
``/readyz`` and HAProxy's health check, put it back. The other replicas serve meanwhile, and
HAProxy's L7 retries (``retry-on conn-failure empty-response``) cover the moment a stopping
replica refuses a connection it was already given. Every step is in the audit log.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botkit.ops.governance import AuditLog

if TYPE_CHECKING:
    from botkit.ops.cluster import Cluster

__all__ = ["RolloutResult", "RolloutStep", "deploy", "restart_on", "wait_idle"]


@dataclass(frozen=True)
class RolloutStep:
    """One replica replaced: how long it drained, restarted, and what it served before."""

    replica: str
    from_model: str | None
    to_model: str
    in_flight_at_drain: int
    drain_s: float
    restart_s: float


@dataclass
class RolloutResult:
    tag: str
    steps: list[RolloutStep] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "seconds": self.seconds, "steps": [asdict(s) for s in self.steps]}


def wait_idle(cluster: Cluster, replica: str, timeout_s: float = 10.0) -> tuple[int, float]:
    """Until HAProxy has no session open to ``replica`` (or ``timeout_s``): (sessions at start, seconds)."""
    t0 = time.monotonic()
    first = None
    while True:
        state = cluster.haproxy.servers().get(replica)
        current = state.current_sessions if state else 0
        first = current if first is None else first
        if current == 0 or time.monotonic() - t0 > timeout_s:
            return first, round(time.monotonic() - t0, 3)
        time.sleep(0.05)


def restart_on(cluster: Cluster, replica: str, model: str | None, extra_env: dict[str, str] | None = None,
               timeout_s: float = 120.0) -> None:
    """Restart ``replica`` on ``model`` (None: the store's production model) with ``extra_env`` as its
    own settings (e.g. fault injection for a drill); an empty ``extra_env`` clears earlier ones."""
    cluster.replica(replica).model = model  # restart_replica's model=None means "unchanged", not production
    cluster.restart_replica(replica, env=dict(extra_env or {}), wait=False)
    cluster.wait_healthy(timeout_s, names=[replica])


def deploy(cluster: Cluster, tag: str, *, replicas: list[str] | None = None, who: str | None = None,
           audit: AuditLog | None = None, idle_timeout_s: float = 10.0, timeout_s: float = 120.0) -> RolloutResult:
    """Replace ``replicas`` (default: all) one at a time with ``tag``; the audit log gets each step."""
    log = audit or AuditLog()
    names = replicas or [s.name for s in cluster.specs]
    result = RolloutResult(tag)
    t_start = time.monotonic()
    log.record("rollout", who=who, subject=tag, details={"step": "start", "replicas": names})
    for name in names:
        before = cluster.replica(name).model
        cluster.drain(name)
        in_flight, drain_s = wait_idle(cluster, name, idle_timeout_s)
        t0 = time.monotonic()
        restart_on(cluster, name, tag, timeout_s=timeout_s)
        step = RolloutStep(name, before, tag, in_flight, drain_s, round(time.monotonic() - t0, 3))
        result.steps.append(step)
        log.record("rollout", who=who, subject=tag, details={"step": "replica", **asdict(step)})
    result.seconds = round(time.monotonic() - t_start, 3)
    log.record("rollout", who=who, subject=tag, details={"step": "done", "seconds": result.seconds})
    return result
