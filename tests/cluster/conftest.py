"""Cluster tests: real supervisord, HAProxy, Redis, Prometheus and BentoML replicas on loopback.

One trained bot for the layer, and one 3-replica cluster per module (about 10 s to start on
2 cores). Drills here are shorter than the documented ones (deploy/CLUSTER.md) to keep
``make test`` inside its budget; their targets are the same.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from botkit.ops.cluster import Cluster


def _require_programs() -> None:
    missing = [b for b in ("haproxy", "redis-server", "prometheus") if not shutil.which(b)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make sysdeps`")


@pytest.fixture(scope="session")
def bot_tag() -> str:
    """The default bot (bundled data), trained once, registered and promoted to production."""
    from botkit.core.registry import set_stage
    from botkit.ops.pipeline import train_evaluate_register

    result = train_evaluate_register()
    set_stage(result.tag, "production")
    return result.tag


@pytest.fixture(scope="module")
def cluster(bot_tag: str, tmp_path_factory) -> Iterator[Cluster]:
    """Three replicas (one worker each) behind HAProxy, Redis with AOF, Prometheus; stopped at the end."""
    _require_programs()
    c = Cluster(replicas=3, workers=1, model=bot_tag, directory=tmp_path_factory.mktemp("cluster"))
    c.start(timeout_s=180)
    try:
        yield c
    finally:
        c.stop()
