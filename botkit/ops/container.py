"""Build the service's container image and prove it answers, with no registry and no Docker daemon.

The ordinary path, for anyone with Docker::

    botkit build                                   # or build_bento(): the bento and its Dockerfile
    bentoml containerize botkit-chat:latest -t botkit-chat:latest
    docker run --rm -p 3000:3000 botkit-chat:latest
    curl -s localhost:3000/readyz && curl -s -XPOST localhost:3000/chat \\
         -H 'content-type: application/json' -d '{"message": "where is my order"}'

That needs a Docker daemon and the ``python:3.11-slim`` base from Docker Hub. On a machine
that has neither (a locked-down CI runner, this project's build machines: Debian 12, root,
network only to PyPI and the Debian mirror) ``prove()`` builds and runs the *same* image
from BentoML's *same* build context, using only Debian packages (``debootstrap``,
``buildah``):

1. **bento** - ``build_bento(model, workers=1, base_image=BASE_IMAGE)``: offline, pinned
   packages; its Dockerfile starts ``FROM localhost/botkit-base:bookworm`` instead of Docker Hub.
2. **base** - ``build_base_image()``: ``debootstrap --variant=minbase bookworm`` into a scratch
   folder, tarred without ``/dev``, ``/proc``, ``/sys`` contents, then ``buildah build`` of
   ``FROM scratch`` + ``ADD rootfs.tar /`` (buildah has no ``import``). On top: the host's extra
   CA certificates (a build option: proxies that re-sign TLS need them, or pip/uv inside the
   image fail certificate checks), ``python3 python3-pip python3-venv ca-certificates``, the
   packages BentoML's Dockerfile would otherwise apt-install on every bento build
   (``gnupg2 build-essential git``) and ``uv`` (pinned from the lock file; BentoML's Dockerfile
   skips its own ``pip install uv`` when a recent uv is present). Environment:
   ``PIP_BREAK_SYSTEM_PACKAGES=1`` (Debian blocks system pip), ``UV_NATIVE_TLS=1`` and
   ``SSL_CERT_FILE`` (uv's built-in roots do not know a proxy's CA), ``UV_PYTHON_DOWNLOADS=never``
   (``uv venv --python 3.11`` must use Debian's python3.11, nothing from GitHub). Built once,
   reused while ``localhost/botkit-base:bookworm`` exists.
3. **image** - ``build_image()``: the build context comes from BentoML's own
   ``construct_containerfile`` (what ``bentoml containerize`` uses: the bento plus its models,
   and the Dockerfile), built with ``buildah build --pull=never --layers``. Not through
   ``bentoml containerize --backend buildah`` itself: its Python API swallows build errors (logs
   them and returns) and it cannot pass ``--pull=never`` (it turns ``--opt pull=never`` into
   ``--pull never``, which buildah 1.28 rejects). A project-owned uv cache is mounted into ``RUN`` steps
   (``--volume``) so a rebuild downloads nothing; old app images are pruned after each build.
4. **run** - ``run_image()``: ``buildah from --pull=never`` + ``buildah run`` of the image's
   entrypoint (``serve --host 127.0.0.1 --port N``) in the background; wait for ``/readyz``;
   stop with SIGTERM to BentoML's arbiter inside (not to ``buildah run``: it SIGKILLs its child and
   the workers, each in a session of its own, live on as orphans), SIGKILL after a grace period;
   ``buildah rm`` the working container.
5. **prove** - GET ``/readyz`` 200 and POST ``/chat`` 200 with a JSON reply from the model that
   went into the image; returns timings per step and the image size.

Why these settings (measured here, see ``/work/shared/FACTS.md``): ``BUILDAH_ISOLATION=chroot``
because the default OCI isolation fails (crun refuses the host's hybrid cgroups); chroot
isolation shares the host network, so ``RUN`` steps reach PyPI and the Debian mirror and the
running server is reachable on 127.0.0.1 without port mapping. Storage lives in a project-owned
folder (``CONTAINERS_STORAGE_CONF`` with its own graphroot/runroot), ``overlay`` when the kernel
allows it, else ``vfs`` (which works everywhere but copies every layer: slower and ~4x the disk);
``BOTKIT_CONTAINER_STORAGE=vfs|overlay`` forces one. The cache folder is
``$BOTKIT_CONTAINER_CACHE``, else ``<BOTKIT_HOME>/container``; ``rm -rf`` it to start over.

Needs root and the Debian packages ``debootstrap buildah debian-archive-keyring`` (``make sysdeps``
installs them; ``--no-install-recommends`` is enough: chroot isolation needs no crun/runc, native
overlay no fuse-overlayfs).
Every failure raises ``RuntimeError("<step>: <last line of the failing command>")``; full
command logs are in ``<cache>/logs/``. ``python -m botkit.ops.container`` runs ``prove()``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from botkit.core.config import PACKAGE_DIR, settings
from botkit.serving.serve import ServerError, free_port, wait_ready

if TYPE_CHECKING:
    from botkit.serving.bento import BentoBuild

__all__ = [
    "APP_REPO",
    "BASE_IMAGE",
    "BASE_PACKAGES",
    "BENTO_BUILD_PACKAGES",
    "SYSTEM_PACKAGES",
    "TOOLS",
    "BuiltImage",
    "ProofResult",
    "RunningImage",
    "build_base_image",
    "build_image",
    "buildah",
    "cache_dir",
    "host_extra_ca_certs",
    "image_exists",
    "main",
    "prove",
    "require_tools",
    "run_image",
    "storage_driver",
]

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
    raw = os.environ.get("BOTKIT_CONTAINER_CACHE")
    path = Path(raw).expanduser().resolve() if raw else settings.home / "container"
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
    forced = os.environ.get("BOTKIT_CONTAINER_STORAGE", "").strip().lower()
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
    lock = PACKAGE_DIR.parent / "requirements" / "lock.txt"
    with contextlib.suppress(OSError):
        for line in lock.read_text().splitlines():
            if line.lower().startswith("uv=="):
                return line.strip()
    return "uv>=0.13.4"


# ------------------------------------------------------------------------------------ base image


def _clear(path: Path) -> None:
    """Remove a scratch rootfs; first unmount what an interrupted debootstrap left mounted in it (proc, sys)."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(f"{path}/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def build_base_image(*, image: str = BASE_IMAGE, release: str = "bookworm", mirror: str | None = None,
                     extra_ca_certs: Sequence[Path] | None = None, bento_deps: bool = True,
                     rebuild: bool = False, cache: Path | None = None) -> bool:
    """Debian ``release`` minbase + python3/pip/venv + CA certificates as ``image``; returns True if it was built.

    Skipped (returns False) when the image already exists, unless ``rebuild``. ``extra_ca_certs``
    defaults to the host's ``/usr/local/share/ca-certificates/*.crt``; pass ``[]`` for none.
    ``bento_deps`` preinstalls what BentoML's Dockerfile apt-installs (and uv), so each bento build
    only runs its ``apt-get update`` and ``uv pip install`` steps.
    """
    require_tools()
    cache = cache or cache_dir()
    env = _env(cache)
    t0 = time.monotonic()
    with _locked(cache):
        if not rebuild and image_exists(image, cache):
            _progress("base", f"{image} exists, reused", t0)
            return False
        main_mirror, security_mirror = _debian_mirrors(release)
        main_mirror = mirror or main_mirror
        work = cache / "base-build"
        _clear(work)
        rootfs = work / "rootfs"
        rootfs.mkdir(parents=True)
        logs = cache / "logs"
        _progress("base", f"debootstrap --variant=minbase {release} from {main_mirror} ...", t0)
        _run("base", ["debootstrap", "--variant=minbase", release, str(rootfs), main_mirror],
             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=1200, log=logs / "debootstrap.log")
        (rootfs / "etc" / "apt" / "sources.list").write_text(
            f"deb {main_mirror} {release} main\ndeb {main_mirror} {release}-updates main\n"
            f"deb {security_mirror} {release}-security main\n")
        _progress("base", "rootfs ready; tar ...", t0)
        excludes = [f"--exclude=./{pattern}" for pattern in ("dev/*", "proc/*", "sys/*", "tmp/*",
                                                              "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*")]
        _run("base", ["tar", "--numeric-owner", "-C", str(rootfs), *excludes, "-cf", str(work / "rootfs.tar"), "."],
             timeout=600)
        _clear(rootfs)
        certs = list(host_extra_ca_certs() if extra_ca_certs is None else extra_ca_certs)
        (work / "certs").mkdir()
        for i, cert in enumerate(certs):
            shutil.copyfile(cert, work / "certs" / f"botkit-extra-{i}-{Path(cert).stem}.crt")
        packages = [*BASE_PACKAGES, *(BENTO_BUILD_PACKAGES if bento_deps else ())]
        uv = f" && python3 -m pip install --no-cache-dir '{_uv_pin()}'" if bento_deps else ""
        containerfile = "\n".join([
            "FROM scratch",
            "ADD rootfs.tar /",
            *(["COPY certs/ /usr/local/share/ca-certificates/"] if certs else []),
            "ENV LANG=C.UTF-8 LC_ALL=C.UTF-8 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "
            "UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy "
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "RUN export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && "
            f"apt-get install -y -qq --no-install-recommends {' '.join(packages)} && update-ca-certificates"
            f"{uv} && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.cache",
            f"LABEL org.opencontainers.image.title=botkit-base org.opencontainers.image.description="
            f"'Debian {release} minbase with python3, pip, venv for BentoML bentos'",
            'CMD ["/bin/bash"]',
            "",
        ])
        (work / "Containerfile").write_text(containerfile)
        _progress("base", f"buildah build {image} ({len(certs)} extra CA cert(s); apt: {' '.join(packages)}) ...",
                  t0)
        _run("base", ["buildah", "build", "--pull=never", "--isolation", "chroot", "--layers=false",
                      "-f", str(work / "Containerfile"), "-t", image, str(work)],
             env=env, timeout=1800, log=logs / "base-build.log")
        _clear(work)
        _prune(cache, keep_app=KEEP_APP_IMAGES)
        _progress("base", f"{image} built ({_size(image, cache)[0]})", t0)
    return True


# ------------------------------------------------------------------------------------ app image


@dataclass(frozen=True)
class BuiltImage:
    name: str
    bento: str
    size: str
    size_bytes: int
    seconds: float


def _prune(cache: Path, keep_app: int = KEEP_APP_IMAGES, protect: str = "") -> None:
    """Drop all but the newest ``keep_app`` app images (never ``protect``), then dangling images.

    Layer-cache images that a kept image builds on are not dangling and survive, so rebuilds stay fast.
    """
    env = _env(cache)
    apps = [img for img in _images(cache)
            if any(n.startswith(APP_REPO + ":") for n in img.get("names") or [])]
    apps.sort(key=lambda img: img.get("created", 0), reverse=True)
    for img in apps[keep_app:]:
        names = [n for n in img.get("names") or [] if n != protect]
        if names:  # an image still used by a working container refuses removal: that is fine
            subprocess.run(["buildah", "rmi", *names], env=env, capture_output=True, timeout=300)
    subprocess.run(["buildah", "rmi", "--prune"], env=env, capture_output=True, timeout=600)


def build_image(bento_build: BentoBuild | str, *, base: str = BASE_IMAGE, tag: str | None = None,
                cache: Path | None = None) -> BuiltImage:
    """Build ``bento_build`` (a ``botkit.serving.bento.BentoBuild`` or a bento tag) into ``tag`` on the local ``base``.

    The build context is BentoML's own (``construct_containerfile``: bento + models + Dockerfile),
    built with ``buildah build --pull=never --layers``. Build the bento with
    ``build_bento(..., base_image=base)``; a bento made for another base (``python:3.11-slim``,
    the default) is built ``FROM base`` instead, with a note on stderr.
    """
    import bentoml
    from bentoml._internal.container import construct_containerfile

    require_tools()
    cache = cache or cache_dir()
    env = _env(cache)
    t0 = time.monotonic()
    bento_tag = bento_build if isinstance(bento_build, str) else bento_build.tag
    tag = tag or f"{APP_REPO}:{bento_tag.split(':', 1)[1]}"
    try:
        bento = bentoml.bentos.get(bento_tag)
    except Exception as exc:
        raise RuntimeError(f"image: unknown bento {bento_tag!r} ({type(exc).__name__})") from None
    uv_cache = cache / "uv-cache"
    uv_cache.mkdir(exist_ok=True)
    with _locked(cache):
        if not image_exists(base, cache):
            raise RuntimeError(f"image: base {base} is missing: run build_base_image() first")
        with construct_containerfile(bento, enable_buildkit=False) as (context, dockerfile):
            text = Path(dockerfile).read_text()
            m = re.search(r"^FROM\s+(\S+)", text, flags=re.M)
            if m and m.group(1) != base:
                _progress("image", f"bento starts FROM {m.group(1)}; building it FROM {base} instead", t0)
                Path(dockerfile).write_text(text.replace(m.group(0), f"FROM {base}", 1))
            _progress("image", f"buildah build {tag} from {bento_tag} ...", t0)
            _run("image", ["buildah", "build", "--pull=never", "--isolation", "chroot", "--layers",
                           "--volume", f"{uv_cache}:/root/.cache/uv",
                           "--label", f"botkit.serving.bento={bento_tag}", "-f", dockerfile, "-t", tag, context],
                 env=env, timeout=1800, log=cache / "logs" / "image-build.log")
        _prune(cache, protect=tag)
    human, size = _size(tag, cache)
    seconds = time.monotonic() - t0
    _progress("image", f"{tag} built in {seconds:.1f} s ({human})", t0)
    return BuiltImage(tag, bento_tag, human, size, seconds)


# ------------------------------------------------------------------------------------ run


@dataclass
class RunningImage:
    image: str
    container: str
    port: int
    log_path: Path
    proc: subprocess.Popen
    ready_seconds: float = 0.0
    stopped_gracefully: bool | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from ``/proc``), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(0), [])
        out.extend(kids)
        todo.extend(kids)
    return out


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_arbiter(pid: int) -> bool:
    """``.../bentoml serve ...`` itself (not ``buildah-chroot-exec .../entrypoint.sh serve``)."""
    argv = _argv(pid)
    return any(Path(a).name == "bentoml" and b == "serve" for a, b in itertools.pairwise(argv))


def _alive(pids: Sequence[int]) -> list[int]:
    """The pids still running (zombies, exited but not yet reaped, count as gone)."""
    out = []
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.append(pid)
    return out


def _stop(proc: subprocess.Popen, grace_s: float) -> bool:
    """SIGTERM the BentoML arbiter inside the container; True when everything exited within ``grace_s``.

    Not SIGTERM to ``buildah run``: it SIGKILLs its child, and BentoML's workers (each in a session
    of its own) outlive it as orphans. The arbiter stops its workers and exits, then ``buildah run``
    returns. Whatever is left after the grace period is SIGKILLed, pid by pid.
    """
    tree = _descendants(proc.pid)
    for pid in [p for p in tree if _is_arbiter(p)] or [proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (proc.poll() is None or _alive(tree)):
        time.sleep(0.1)
    graceful = proc.poll() is not None and not _alive(tree)
    if not graceful:
        for pid in [proc.pid, *_alive(tree)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    return graceful


@contextlib.contextmanager
def run_image(image: str, port: int | None = None, *, ready_timeout_s: float = 120.0, stop_grace_s: float = 20.0,
              env: dict[str, str] | None = None, cache: Path | None = None) -> Iterator[RunningImage]:
    """Run ``image``'s BentoML server on 127.0.0.1:``port`` (free port if None) until the block ends.

    ``buildah from`` + ``buildah run`` (chroot isolation: the host's network namespace, so loopback
    reaches it); waits for ``/readyz``; on exit SIGTERM, SIGKILL after ``stop_grace_s``, ``buildah rm``.
    """
    require_tools()
    cache = cache or cache_dir()
    benv = _env(cache)
    port = port or free_port()
    name = f"botkit-run-{os.getpid()}-{port}"
    subprocess.run(["buildah", "rm", name], env=benv, capture_output=True, timeout=120)  # a leftover, if any
    _run("run", ["buildah", "from", "--pull=never", "--name", name, image], env=benv, timeout=300)
    log_path = cache / "logs" / f"run-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for old in sorted(log_path.parent.glob("run-*.log"), key=lambda p: p.stat().st_mtime)[:-KEEP_RUN_LOGS]:
        old.unlink(missing_ok=True)
    extra = [a for k, v in (env or {}).items() for a in ("--env", f"{k}={v}")]
    cmd = ["buildah", "run", "--isolation", "chroot", *extra, name, "--",
           ENTRYPOINT, "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc, running = None, None
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, env=benv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        running = RunningImage(image, name, port, log_path, proc)
        try:
            running.ready_seconds = wait_ready(running.url, ready_timeout_s, proc)
        except ServerError as exc:
            tail = _last_line(log_path.read_text(errors="replace"))
            raise RuntimeError(f"run: {exc}; last log line: {tail} (log: {log_path})") from None
        yield running
    finally:
        if proc is not None:
            graceful = _stop(proc, stop_grace_s)
            if running is not None:
                running.stopped_gracefully = graceful
        subprocess.run(["buildah", "rm", name], env=benv, capture_output=True, timeout=120)


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m botkit.ops.container [--model TAG] [--workers N] [--rebuild-base] [--json]``."""
    p = argparse.ArgumentParser(prog="botkit container", description=prove.__doc__)
    p.add_argument("--model", help="model tag (default: newest production, else newest)")
    p.add_argument("--workers", type=int, default=1, help="workers frozen into the bento (default: %(default)s)")
    p.add_argument("--rebuild-base", action="store_true", help="rebuild the Debian base image")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    try:
        r = prove(a.model, workers=a.workers, rebuild_base=a.rebuild_base)
    except RuntimeError as exc:
        print(f"botkit container: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(r), indent=1) if a.json else r.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
