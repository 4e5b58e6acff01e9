"""The container chain's tools: cache folder, buildah with project-owned storage, Debian mirrors, uv pin.

Why each setting: see the package docstring (:mod:`botkit.ops.container`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from botkit.core.config import PACKAGE_DIR, settings

if TYPE_CHECKING:
    pass

__all__ = ["APP_REPO", "BASE_IMAGE", "BASE_PACKAGES", "BENTO_BUILD_PACKAGES", "SYSTEM_PACKAGES", "TOOLS", "buildah",
           "cache_dir", "host_extra_ca_certs", "image_exists", "require_tools", "storage_driver"]

BASE_IMAGE = "localhost/botkit-base:bookworm"
APP_REPO = "localhost/botkit-chat"
# Host packages (Debian) the chain needs; `make sysdeps` installs them when missing.
SYSTEM_PACKAGES = ("debootstrap", "buildah", "debian-archive-keyring")
TOOLS = {"debootstrap": "debootstrap", "buildah": "buildah", "tar": "tar"}  # command -> Debian package
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")  # debootstrap verifies the mirror with it
BASE_PACKAGES = ("ca-certificates", "python3", "python3-pip", "python3-venv")
# What BentoML 1.4's generated Dockerfile apt-installs on every build: preinstalled, that step becomes a no-op.
BENTO_BUILD_PACKAGES = ("gnupg2", "bash", "build-essential", "git")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
ENTRYPOINT = "/home/bentoml/bento/env/docker/entrypoint.sh"
DEFAULT_MIRRORS = ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security")
KEEP_APP_IMAGES = 2
KEEP_RUN_LOGS = 10
T = TypeVar("T")

_T0 = time.monotonic()
_CLOCK: list[float] = []  # prove() pushes its start time: every step's line then counts from it


def _progress(step: str, message: str, t0: float | None = None) -> None:
    """One progress line on stderr: ``[container  12.3s] step: message`` (seconds since the chain/step began)."""
    start = _CLOCK[-1] if _CLOCK else (_T0 if t0 is None else t0)
    elapsed = time.monotonic() - start
    print(f"[container {elapsed:6.1f}s] {step}: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ environment


def cache_dir() -> Path:
    """``$BOTKIT_CONTAINER_CACHE``, else ``<BOTKIT_HOME>/container`` (rootfs scratch, storage, uv cache, logs)."""
    path = settings.from_env().container_cache or settings.home / "container"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_tools() -> None:
    """Fail with one line naming what is missing and how to get it (never a skip)."""
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None}
                     | (set() if KEYRING.exists() else {"debian-archive-keyring"}))
    if missing:
        raise RuntimeError(f"tools: missing {', '.join(missing)}: `make sysdeps` installs them "
                           f"(apt-get install {' '.join(missing)})")
    if os.geteuid() != 0:
        raise RuntimeError("tools: debootstrap and buildah with chroot isolation need root here")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "Location 'file:" not in ln]
    return lines[-1][:300] if lines else "no output"


def _run(step: str, cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600,
         log: Path | None = None, cwd: Path | None = None) -> str:
    """Run a command; on failure raise ``RuntimeError("step: last line")``. Output goes to ``log`` when given."""
    try:
        if log is None:
            out = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
            text = (out.stdout or "") + (out.stderr or "")
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as fh:
                fh.write("$ " + " ".join(cmd) + "\n")
                fh.flush()
                out = subprocess.run(list(cmd), env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                     text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            text = log.read_text(errors="replace")
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{step}: `{' '.join(cmd[:3])} ...` timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise RuntimeError(f"{step}: cannot run {cmd[0]}: {exc}") from None
    if out.returncode != 0:
        where = f" (log: {log})" if log else ""
        raise RuntimeError(f"{step}: {_last_line(text)}{where}")
    return out.stdout if log is None else text


_DRIVERS: dict[Path, str] = {}


def _storage_conf(cache: Path, driver: str) -> Path:
    """A containers-storage.conf of the project's own: graphroot and runroot inside the cache folder."""
    conf = cache / f"storage-{driver}.conf"
    text = (f'[storage]\ndriver = "{driver}"\ngraphroot = "{cache / ("storage-" + driver)}"\n'
            f'runroot = "{cache / ("run-" + driver)}"\n')
    if not conf.exists() or conf.read_text() != text:
        tmp = conf.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, conf)
    return conf


def storage_driver(cache: Path | None = None) -> str:
    """``overlay`` when it works in the cache folder, else ``vfs``; ``BOTKIT_CONTAINER_STORAGE`` forces one."""
    cache = cache or cache_dir()
    if cache in _DRIVERS:
        return _DRIVERS[cache]
    forced = settings.from_env().container_storage
    candidates = [forced] if forced else ["overlay", "vfs"]
    errors = []
    for driver in candidates:
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(_storage_conf(cache, driver))}
        try:
            _run("storage", ["buildah", "images", "-q"], env=env, timeout=60)
        except RuntimeError as exc:
            errors.append(f"{driver}: {exc}")
            continue
        _DRIVERS[cache] = driver
        return driver
    raise RuntimeError(f"storage: no usable storage driver ({'; '.join(errors)})")


def _env(cache: Path) -> dict[str, str]:
    """What every buildah call gets: project-owned storage, chroot isolation, no usage tracking."""
    driver = storage_driver(cache)
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(_storage_conf(cache, driver)),
            "BUILDAH_ISOLATION": "chroot", "BUILDAH_FORMAT": "oci", "BENTOML_DO_NOT_TRACK": "true"}


def buildah(*args: str, cache: Path | None = None, timeout: float = 600) -> str:
    """Run ``buildah ARGS`` on the project's storage (``buildah("images")``); returns its stdout."""
    cache = cache or cache_dir()
    return _run(f"buildah {args[0] if args else ''}".strip(), ["buildah", *args], env=_env(cache), timeout=timeout)


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One build/prune at a time per cache folder (other sessions may share it)."""
    with (cache / ".build.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def image_exists(image: str, cache: Path | None = None) -> bool:
    cache = cache or cache_dir()
    out = subprocess.run(["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", image],
                         env=_env(cache), capture_output=True, text=True, timeout=60)
    return out.returncode == 0


def _images(cache: Path) -> list[dict]:
    return json.loads(_run("prune", ["buildah", "images", "--json"], env=_env(cache), timeout=120) or "[]")


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _size(image: str, cache: Path) -> tuple[str, int]:
    """Buildah's size (human, SI units as it prints them) and the same in bytes (approximate)."""
    for img in _images(cache):
        if image in (img.get("names") or []):
            human = str(img.get("size", ""))
            m = re.match(r"([\d.]+)\s*([KMGT]?B)", human)
            return human, int(float(m.group(1)) * _UNITS[m.group(2)]) if m else 0
    return "", 0


def host_extra_ca_certs() -> list[Path]:
    """The host's locally added CA certificates (``/usr/local/share/ca-certificates``), if any."""
    return sorted(p for p in HOST_CA_DIR.rglob("*.crt") if p.is_file()) if HOST_CA_DIR.is_dir() else []


def _debian_mirrors(release: str) -> tuple[str, str]:
    """The archive and security mirrors apt is configured with on the host (deb822 or one-line format)."""
    main, security = DEFAULT_MIRRORS
    found: dict[str, str] = {}
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for para in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", para, flags=re.M))
                for suite in fields.get("Suites", "").split():
                    for uri in fields.get("URIs", "").split():
                        found.setdefault(suite, uri)
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    found.setdefault(m.group(2), m.group(1))
    return found.get(release, main).rstrip("/"), found.get(f"{release}-security", security).rstrip("/")


def _uv_pin() -> str:
    lock = PACKAGE_DIR.parent / "requirements" / "dev.lock"
    with contextlib.suppress(OSError):
        for line in lock.read_text().splitlines():
            if line.lower().startswith("uv=="):
                return line.split()[0]  # "uv==0.13.9 \", its hashes on the next lines
    return "uv>=0.13.4"

