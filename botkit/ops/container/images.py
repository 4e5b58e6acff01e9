"""The two images: a Debian base from debootstrap, and the app image from BentoML's own build context."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botkit.serving.bento import BentoBuild

from botkit.core.config import configure_bentoml
from botkit.ops.container.tools import (
    APP_REPO,
    BASE_IMAGE,
    BASE_PACKAGES,
    BENTO_BUILD_PACKAGES,
    KEEP_APP_IMAGES,
    _debian_mirrors,
    _env,
    _images,
    _locked,
    _progress,
    _run,
    _size,
    _uv_pin,
    cache_dir,
    host_extra_ca_certs,
    image_exists,
    require_tools,
)

__all__ = ["RUNTIME_FORBIDDEN", "BuiltImage", "build_base_image", "build_image"]

# What the runtime image must not carry (issue 14): compilers, git, gnupg, and the build host's extra CA
# certificates. BentoML's Dockerfile apt-installs the first three to build wheels; nothing needs them at run time.
RUNTIME_PURGE = ("build-essential", "gcc", "g++", "cpp", "make", "dpkg-dev", "libc6-dev", "git", "git-man", "gnupg2",
                 "gnupg", "dirmngr", "gpg-agent", "gpgsm", "gpg-wks-client", "gpg-wks-server", "gnupg-utils")
RUNTIME_FORBIDDEN = ("usr/bin/gcc", "usr/bin/cc", "usr/bin/g++", "usr/bin/make", "usr/bin/git", "usr/bin/gpg",
                     "usr/local/share/ca-certificates/botkit-extra-*")

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


def _slim(tag: str, cache: Path, t0: float) -> None:
    """Rebuild ``tag`` as one squashed layer without ``RUNTIME_PURGE`` and the host's extra CA certificates.

    The unslimmed image stays as ``<repo>:build-cache`` so the next build reuses its layers.
    Refuses (RuntimeError) an image in which any of ``RUNTIME_FORBIDDEN`` is left.
    """
    env = _env(cache)
    cache_tag = f"{APP_REPO}:build-cache"
    subprocess.run(["buildah", "rmi", cache_tag], env=env, capture_output=True, timeout=300)
    _run("slim", ["buildah", "tag", tag, cache_tag], env=env, timeout=300)
    work = cache / "slim-build"
    _clear(work)
    work.mkdir(parents=True)
    purge = " ".join(RUNTIME_PURGE)
    (work / "Containerfile").write_text("\n".join([
        f"FROM {tag}",
        "USER root",
        "RUN export DEBIAN_FRONTEND=noninteractive"
        f" && installed=$(dpkg-query -W -f='${{db:Status-Abbrev}} ${{binary:Package}}\\n' {purge} 2>/dev/null"
        " | awk '/^ii/ {print $2}')"
        " && if [ -n \"$installed\" ]; then apt-get purge -y -qq --auto-remove $installed >/dev/null; fi"
        " && rm -f /usr/local/share/ca-certificates/botkit-extra-*.crt"
        " && update-ca-certificates --fresh >/dev/null"
        " && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache /usr/share/doc/* /usr/share/man/*",
        "USER bentoml",
        "",
    ]))
    _progress("image", f"slimming {tag}: no compilers, git, gnupg or host CA certificates ...", t0)
    _run("image", ["buildah", "build", "--pull=never", "--isolation", "chroot", "--layers=false", "--squash",
                   "-f", str(work / "Containerfile"), "-t", tag, str(work)],
         env=env, timeout=1800, log=cache / "logs" / "slim-build.log")
    _clear(work)
    left = _leftovers(tag, env)
    if left:
        raise RuntimeError(f"image: {tag} still holds {', '.join(left)} after slimming")


def _leftovers(tag: str, env: dict[str, str]) -> list[str]:
    """Which of ``RUNTIME_FORBIDDEN`` exist in the image's filesystem (mounted read-only for a look)."""
    ctr = subprocess.run(["buildah", "from", "--pull=never", tag], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout.strip().splitlines()[-1]
    try:
        root = Path(subprocess.run(["buildah", "mount", ctr], env=env, capture_output=True, text=True, timeout=300,
                                   check=True).stdout.strip())
        return [p for p in RUNTIME_FORBIDDEN if any(root.glob(p))]
    finally:
        subprocess.run(["buildah", "rm", ctr], env=env, capture_output=True, timeout=300)


def build_image(bento_build: BentoBuild | str, *, base: str = BASE_IMAGE, tag: str | None = None,
                cache: Path | None = None) -> BuiltImage:
    """Build ``bento_build`` (a ``botkit.serving.bento.BentoBuild`` or a bento tag) into ``tag`` on the local ``base``.

    The build context is BentoML's own (``construct_containerfile``: bento + models + Dockerfile),
    built with ``buildah build --pull=never --layers``. Build the bento with
    ``build_bento(..., base_image=base)``; a bento made for another base (``python:3.11-slim``,
    the default) is built ``FROM base`` instead, with a note on stderr.
    """
    configure_bentoml()  # the bento lives in botkit's store; tracking off
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
        _slim(tag, cache, t0)
        _prune(cache, protect=tag)
    human, size = _size(tag, cache)
    seconds = time.monotonic() - t0
    _progress("image", f"{tag} built in {seconds:.1f} s ({human})", t0)
    return BuiltImage(tag, bento_tag, human, size, seconds)

