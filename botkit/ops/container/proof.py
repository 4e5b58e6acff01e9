"""The proof: bento, base, image, run, then ``/readyz`` and ``/chat`` answer from the model that went in."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from botkit.ops.container.images import build_base_image, build_image
from botkit.ops.container.run import run_image
from botkit.ops.container.tools import (
    _CLOCK,
    BASE_IMAGE,
    T,
    _env,
    _last_line,
    _progress,
    cache_dir,
    require_tools,
    storage_driver,
)

__all__ = ["ProofResult", "prove"]

# ------------------------------------------------------------------------------------ the proof


@dataclass
class ProofResult:
    image: str
    url: str
    bento: str
    model: str
    base_image: str
    base_built: bool
    storage_driver: str
    image_size: str
    image_size_bytes: int
    readyz_status: int
    chat_status: int
    chat: dict
    stopped_gracefully: bool
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        return (f"image {self.image} ({self.image_size}, {self.storage_driver} storage) from bento {self.bento}, "
                f"model {self.model}: /readyz {self.readyz_status}, /chat {self.chat_status} "
                f"-> {self.chat.get('intent')!r}: {self.chat.get('reply')!r}\ntimings: {steps}")


def _http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def prove(model: str | None = None, *, workers: int = 1, message: str = "where is my order",
          rebuild_base: bool = False, keep_image: bool = True) -> ProofResult:
    """bento build -> base -> image -> run -> GET /readyz, POST /chat -> stop; raises RuntimeError on any failure."""
    from botkit.serving.bento import build_bento

    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], T]) -> T:
        s = time.monotonic()
        try:
            return fn()
        finally:
            timings[name] = round(time.monotonic() - s, 2)

    require_tools()
    cache = cache_dir()
    driver = storage_driver(cache)
    _CLOCK.append(t0)
    try:
        _progress("prove", f"cache {cache} ({driver} storage)")
        _progress("bento", f"build_bento({model or 'newest production, else newest model'}, workers={workers}) ...")
        try:
            bento = timed("bento", lambda: build_bento(model, workers=workers, base_image=BASE_IMAGE))
        except Exception as exc:
            raise RuntimeError(f"bento: {_last_line(str(exc)) if str(exc) else type(exc).__name__}") from None
        _progress("bento", f"{bento.tag} (model {bento.model})")
        built_base = timed("base", lambda: build_base_image(rebuild=rebuild_base, cache=cache))
        image = timed("image", lambda: build_image(bento, cache=cache))
        _progress("run", f"buildah run {image.name} on 127.0.0.1 ...")
        s = time.monotonic()
        with run_image(image.name, cache=cache) as running:
            timings["start"] = round(time.monotonic() - s, 2)
            _progress("run", f"{running.url} ready after {running.ready_seconds:.1f} s")
            s = time.monotonic()
            ready, ready_body = _http("GET", f"{running.url}/readyz")
            chat_status, chat_body = _http("POST", f"{running.url}/chat", {"message": message, "session_id": "prove"})
            timings["requests"] = round(time.monotonic() - s, 2)
            s = time.monotonic()
        timings["stop"] = round(time.monotonic() - s, 2)
        how = "gracefully (SIGTERM)" if running.stopped_gracefully else "with SIGKILL after the grace period"
        _progress("run", f"stopped {how} in {timings['stop']:.1f} s; working container removed")
        if ready != 200:
            raise RuntimeError(f"readyz: GET /readyz answered {ready}: {_last_line(ready_body)}")
        try:
            chat = json.loads(chat_body)
        except json.JSONDecodeError:
            chat = {}
        if chat_status != 200 or not isinstance(chat, dict) or not chat.get("reply"):
            raise RuntimeError(f"chat: POST /chat answered {chat_status}: {_last_line(chat_body)}")
        if chat.get("model_version") != bento.model:
            raise RuntimeError(f"chat: the image served {chat.get('model_version')!r}, not {bento.model!r}")
        _progress("chat", f"{chat['intent']!r} ({chat['confidence']:.2f}): {chat['reply']!r}")
        if not keep_image:
            subprocess.run(["buildah", "rmi", image.name], env=_env(cache), capture_output=True, timeout=300)
        timings["total"] = round(time.monotonic() - t0, 2)
        _progress("prove", "done: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        return ProofResult(image.name, running.url, bento.tag, bento.model, BASE_IMAGE, bool(built_base), driver,
                           image.size, image.size_bytes, ready, chat_status, chat, bool(running.stopped_gracefully),
                           timings)
    finally:
        _CLOCK.pop()

