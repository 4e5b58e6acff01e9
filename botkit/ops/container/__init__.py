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

from botkit.ops.container.images import BuiltImage, build_base_image, build_image
from botkit.ops.container.proof import ProofResult, prove
from botkit.ops.container.run import RunningImage, run_image
from botkit.ops.container.tools import (
    APP_REPO,
    BASE_IMAGE,
    BASE_PACKAGES,
    BENTO_BUILD_PACKAGES,
    SYSTEM_PACKAGES,
    TOOLS,
    buildah,
    cache_dir,
    host_extra_ca_certs,
    image_exists,
    require_tools,
    storage_driver,
)

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
    "prove",
    "require_tools",
    "run_image",
    "storage_driver",
]
