"""The service's container image, for real: built with buildah on a Debian base made here, run, asked.

No registry and no Docker daemon are needed (see ``botkit/ops/container.py``). The session's model
(``trained_tag``: the tiny bot from ``tests/conftest.py``) goes into a bento, the bento into an
image on ``localhost/botkit-base:bookworm``, the image runs with ``buildah run`` on loopback, and
``/readyz`` and ``/chat`` must answer from inside it with that model.

The container cache (base image, image storage, uv cache) must outlive the throw-away
``BOTKIT_HOME`` of the session, or every run would debootstrap again: it lives at
``$BOTKIT_CONTAINER_CACHE``, default ``<repo>/.botkit/container`` (the cache ``make container``
uses too). Cold (empty cache): about 3.5 minutes; warm: well under a minute.

A missing tool (debootstrap, buildah) is a FAILURE naming ``make sysdeps``, never a skip.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from botkit.ops import container

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("BOTKIT_CONTAINER_CACHE") or REPO / ".botkit" / "container")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def proof(trained_tag: str) -> Iterator[container.ProofResult | str]:
    """``prove(trained_tag)`` once for the module: the result, or the one-line error as a string."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOTKIT_CONTAINER_CACHE", str(CACHE))
        try:
            yield container.prove(trained_tag)
        except RuntimeError as exc:
            yield str(exc)


def _ok(proof: container.ProofResult | str) -> container.ProofResult:
    if isinstance(proof, str):
        pytest.fail(f"the container proof failed: {proof}", pytrace=False)
    return proof


def test_tools_are_installed() -> None:
    """debootstrap, buildah, the Debian keyring, root: a failure names `make sysdeps`, never a skip."""
    try:
        container.require_tools()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_missing_tool_message_names_make_sysdeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container.tools.shutil, "which", lambda cmd: None if cmd == "buildah" else f"/usr/bin/{cmd}")
    with pytest.raises(RuntimeError, match=r"^tools: missing buildah: `make sysdeps` installs them"):
        container.require_tools()


def test_image_answers_readyz_and_chat_from_inside(proof, trained_tag: str) -> None:
    r = _ok(proof)
    assert r.readyz_status == 200
    assert r.chat_status == 200
    assert r.chat["model_version"] == trained_tag, "the image must serve the model that was built into it"
    assert r.chat["reply"] and isinstance(r.chat["reply"], str)
    assert r.chat["intent"] in {"greeting", "order_status", "refund", "oos"}
    assert 0.0 <= r.chat["confidence"] <= 1.0
    assert r.image.startswith(container.APP_REPO + ":") and r.bento.startswith("botkit-chat:")


def test_image_is_stored_and_measured(proof) -> None:
    r = _ok(proof)
    assert container.image_exists(r.image, CACHE)
    assert container.image_exists(container.BASE_IMAGE, CACHE)
    assert r.storage_driver in {"overlay", "vfs"}
    assert 100e6 < r.image_size_bytes < 5e9, r.image_size
    for step in ("bento", "base", "image", "start", "requests", "stop", "total"):
        assert r.timings[step] >= 0, step


def test_server_stopped_cleanly(proof) -> None:
    r = _ok(proof)
    assert r.stopped_gracefully, "SIGTERM to the BentoML arbiter should stop the container within the grace period"
    port = int(r.url.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"{r.url} still accepts connections after the stop"
    out = container.buildah("containers", "--format", "{{.ContainerName}}", cache=CACHE)
    assert not [n for n in out.split() if n.startswith(f"botkit-run-{os.getpid()}-{port}")], out
