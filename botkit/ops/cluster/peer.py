"""The cluster as one server for ``make bench``: ``url`` is HAProxy, ``proc`` the root of the tree.

``botkit.ops.bench.peers`` expects ``url``, ``proc`` (its ``pid`` roots the process tree whose CPU
is measured: supervisord, every replica and its workers, HAProxy and Redis), ``start()`` and
``stop()``. Prometheus stays off so it does not take CPU from the replicas on a small machine.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psutil

from botkit.ops.cluster.cluster import Cluster

__all__ = ["ClusterPeer", "start_cluster"]


def start_cluster(model: str | None = None, replicas: int = 3, workers: int = 1,
                  directory: Path | None = None) -> tuple[Cluster, str, list[int]]:
    """Start a cluster without Prometheus; returns it, its load balancer URL and every server pid."""
    c = Cluster(replicas=replicas, workers=workers, model=model, prometheus=False,
                directory=directory or Path(tempfile.mkdtemp(prefix="botkit-cluster-")))
    c.start()
    root = psutil.Process(c.supervisord_pid)
    return c, c.lb_url, [root.pid, *(p.pid for p in root.children(recursive=True))]


class ClusterPeer:
    """Adapter with the shape of ``botkit.serving.serve.Server`` that the benchmark runner uses."""

    def __init__(self, model: str | None = None, replicas: int = 3, workers: int = 1) -> None:
        self.model, self.replicas, self.workers = model, replicas, workers
        self.cluster: Cluster | None = None
        self.proc: psutil.Process | None = None
        self.url = ""

    def start(self, wait: bool = True) -> ClusterPeer:
        self.cluster, self.url, _ = start_cluster(self.model, self.replicas, self.workers)
        self.proc = psutil.Process(self.cluster.supervisord_pid)
        return self

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            shutil.rmtree(self.cluster.directory, ignore_errors=True)  # its logs, configs, Redis AOF
        self.cluster, self.proc = None, None
