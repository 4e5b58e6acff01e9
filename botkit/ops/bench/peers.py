"""The rows of ``make bench``: each peer is one way to serve the same model, started the same way.

Adding a peer is one entry in ``PEERS``: a key, a label, how many worker processes it runs, and a
``launch(peer, model_tag) -> Server`` callable. Anything with ``url``, ``proc`` (the root of its
process tree), ``start()`` and ``stop()`` works (``botkit.serving.serve.Server`` or a subclass), so a
"cluster behind HAProxy" row can return its own launcher object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from botkit.core.config import settings
from botkit.serving.serve import Server

__all__ = ["ALTERNATIVES", "DEFAULT", "LITSERVE", "NAIVE_SAME_CORES", "PEERS", "Peer", "select"]


class _Command(Server):
    """A server started by an arbitrary command; ``{host}`` and ``{port}`` are filled in."""

    argv: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return [a.format(host=self.host, port=self.port, python=sys.executable) for a in self.argv]


def _command(argv: tuple[str, ...], workers: int) -> Callable[[Peer, str], Server]:
    def launch(peer: Peer, tag: str) -> Server:
        srv = _Command(model=tag, workers=workers, all_workers=False, ready_timeout_s=120)
        srv.argv = argv
        return srv
    return launch


def _bentoml(target: str, workers: int) -> Callable[[Peer, str], Server]:
    def launch(peer: Peer, tag: str) -> Server:
        return Server(model=tag, workers=workers, target=target, all_workers=False, access_log=False)
    return launch


def _botkit(workers: int, env: dict[str, str] | None = None) -> Callable[[Peer, str], Server]:
    def launch(peer: Peer, tag: str) -> Server:
        # Only the worker count (and ``env``, for a variant row) is set: the rest is the default as shipped.
        return Server(model=tag, workers=workers, env=dict(env or {}))
    return launch


def _naive(workers: int) -> Callable[[Peer, str], Server]:
    argv = ("{python}", "-m", "uvicorn", "botkit.ops.naive:app", "--factory", "--host", "{host}", "--port",
            "{port}", "--workers", str(workers), "--no-access-log", "--log-level", "warning")
    return _command(argv, workers)


def _litserve(workers: int) -> Callable[[Peer, str], Server]:
    argv = ("{python}", "-m", "botkit.ops.bench.litserve_peer", "{host}", "{port}", str(workers), "32", "0.002")
    return _command(argv, workers)


def _cluster(replicas: int) -> Callable[[Peer, str], Server]:
    def launch(peer: Peer, tag: str) -> Server:
        from botkit.ops.cluster.peer import ClusterPeer  # supervisord + HAProxy + Redis + replicas

        return ClusterPeer(model=tag, replicas=replicas, workers=1)  # type: ignore[return-value]
    return launch


@dataclass(frozen=True)
class Peer:
    """One configuration of the benchmark."""

    key: str  # stable id: the key in summary.json's ``peers`` map
    label: str  # what the table shows
    workers: int  # server processes that run the model
    launch: Callable[[Peer, str], Server] = field(compare=False, repr=False)
    body: str = "object"  # request shape: "object" {"message": s}, "list" {"message": [s]} (batchable APIs)
    note: str = ""

    def server(self, tag: str) -> Server:
        return self.launch(self, tag)


_BENTO = "botkit.ops.bench.bentoml_peers"
W = settings.workers
PEERS: tuple[Peer, ...] = (
    Peer("naive_1w", "naive FastAPI, 1 worker", 1, _naive(1), note="uvicorn, plain `def` endpoint"),
    Peer("naive_2w", f"naive FastAPI, {W} workers", W, _naive(W), note="uvicorn --workers"),
    Peer("litserve", f"LitServe 0.2.19, {W} workers, batch 32 / 2 ms", W, _litserve(W),
         note="LitAPI(max_batch_size=32, batch_timeout=0.002), workers_per_device"),
    Peer("bentoml_batchable", f"BentoML batchable=True, {W} workers", W, _bentoml(f"{_BENTO}:BatchableChat", W),
         body="list", note="@bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)"),
    Peer("botkit_1w", "botkit, 1 worker", 1, _botkit(1), note="the default with BOTKIT_WORKERS=1"),
    Peer("botkit_default", "botkit default", W, _botkit(W), note="as shipped"),
    Peer("ceiling", f"ceiling: BentoML constant answer, {W} workers", W, _bentoml(f"{_BENTO}:Ceiling", W),
         note="no model: the HTTP stack alone"),
    Peer("botkit_queued_acks", "botkit default, queued acks", W, _botkit(W, {"BOTKIT_EVENTS_DURABLE": "false"}),
         note="a 200 means queued, not stored (BOTKIT_EVENTS_DURABLE=false): the cost of durable acks"),
    Peer("cluster_3x1w", "cluster: 3 replicas x 1 worker behind HAProxy, Redis events", 3, _cluster(3),
         note="botkit cluster (durable acks on Redis); server CPU includes HAProxy and Redis"),
)
# What users would pick instead of botkit: the p99 target compares the default with these. The other
# rows are botkit's own variants (1 worker, queued acks, a cluster) or a reference (the ceiling).
ALTERNATIVES = frozenset({"naive_1w", "naive_2w", "litserve", "bentoml_batchable"})
DEFAULT = "botkit_default"
NAIVE_SAME_CORES = "naive_2w"
LITSERVE = "litserve"


def select(keys: str | list[str] | None) -> tuple[Peer, ...]:
    """Peers by key (comma-separated or a list), in ``PEERS`` order; all when empty."""
    if not keys:
        return PEERS
    wanted = [k.strip() for k in (keys.split(",") if isinstance(keys, str) else keys) if k.strip()]
    unknown = sorted(set(wanted) - {p.key for p in PEERS})
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; known: {[p.key for p in PEERS]}")
    return tuple(p for p in PEERS if p.key in wanted)
