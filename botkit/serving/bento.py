"""Package the service and one model as a bento, offline.

``bentoml build`` locks packages with uv against the package index by default, which fails
without a network. Here the bento gets the project's own runtime lock (``requirements/runtime.lock``:
what core and serving import, and everything those need, at the versions tests ran with) with
locking off, so the build is reproducible and works on an air-gapped machine; the
worker count is frozen into the bento at this point, so it is an argument.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from botkit.core.config import PACKAGE_DIR, settings
from botkit.core.registry import resolve_tag

__all__ = ["BentoBuild", "build_bento", "runtime_requirements"]

SOURCE_ROOT = PACKAGE_DIR.parent
# The bento carries the floors the service runs on; ops, teaching and the CLI stay out of the image.
SERVED_FLOORS = ("core", "serving")
RUNTIME_LOCK = SOURCE_ROOT / "requirements" / "runtime.lock"


@dataclass(frozen=True)
class BentoBuild:
    tag: str
    path: Path
    dockerfile: Path
    model: str
    workers: int


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(lock: Path = RUNTIME_LOCK) -> list[str]:
    """Every exact pin of the runtime lock (pyproject's runtime dependencies, closed; Jupyter, Locust, tests stay out).

    Hashes stay in the lock: BentoML adds its own lines to the bento's requirements, which
    pip's all-or-nothing hash mode would then refuse.
    """
    if not lock.is_file():
        raise FileNotFoundError(f"{lock}: no runtime lock (run `make lock`)")
    pins = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)", line)
        if m:
            pins[_norm(m.group(1))] = f"{m.group(1)}=={m.group(2)}"
    return [pins[n] for n in sorted(pins)]


def build_bento(model: str | None = None, *, workers: int | None = None,
                base_image: str | None = None) -> BentoBuild:
    """Build the bento in a child process (the worker count is read when the service is imported)."""
    tag = resolve_tag(model, settings.model_name)
    workers = workers or settings.workers
    docker: dict = {"python_version": "3.11", "system_packages": []}
    if base_image:
        docker = {"base_image": base_image}
    bentofile = {
        "service": "botkit.serving.service:Chat",
        "name": "botkit-chat",
        "labels": {"model": tag, "workers": str(workers)},
        "include": ["botkit/**/*.py"],
        "python": {"packages": runtime_requirements(), "lock_packages": False},
        "docker": docker,
        "models": [tag],
        "envs": [{"name": "BOTKIT_MODEL_TAG", "value": tag}, {"name": "BOTKIT_WORKERS", "value": str(workers)},
                 {"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        # The build context holds only the package's modules: walking the repository would read
        # .venv and the container cache (gigabytes) for nothing.
        context = Path(tmp) / "context"
        (context / "botkit").mkdir(parents=True)
        shutil.copy2(PACKAGE_DIR / "__init__.py", context / "botkit" / "__init__.py")
        for floor in SERVED_FLOORS:
            shutil.copytree(PACKAGE_DIR / floor, context / "botkit" / floor,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        bf = Path(tmp) / "bentofile.yaml"
        bf.write_text(yaml.safe_dump(bentofile, sort_keys=False))
        env = {**os.environ, **settings.env(), "BOTKIT_WORKERS": str(workers), "BOTKIT_MODEL_TAG": tag}
        bentoml = Path(sys.executable).with_name("bentoml")
        cmd = [str(bentoml) if bentoml.exists() else "bentoml", "build", "-f", str(bf), "--output", "tag",
               str(context)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        last = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"bentoml build failed: {last[0]}")
    match = re.search(r"__tag__:(\S+)", out.stdout) or re.search(r"(botkit-chat:\w+)", out.stdout)
    if not match:
        raise RuntimeError(f"bentoml build printed no tag: {out.stdout.strip()[-200:]}")
    bento_tag = match.group(1)
    name, version = bento_tag.split(":")
    path = settings.bentoml_home / "bentos" / name / version
    return BentoBuild(bento_tag, path, path / "env" / "docker" / "Dockerfile", tag, workers)
