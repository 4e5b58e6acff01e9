"""Model signatures kept apart from the model store: a tampered model is refused even when rehashed.

``save_model`` records each artefact's sha256 in the model's own metadata, next to the files. That
catches corruption and a careless edit, not an attacker: whoever can replace ``pipeline.skops``
can rewrite ``model.yaml`` with the new hash. So every stored model is also *signed*: an
HMAC-SHA256 under the audit key (``botkit.core.keys``) over its tag and artefact hashes, written to
``<signatures_dir>/<name>/<version>.sig`` (``BOTKIT_SIGNATURES_DIR``, default ``<home>/signatures``),
outside the model directory. Loading recomputes the files' hashes and checks them against the
signature; a mismatch is refused.

``BOTKIT_MODEL_SIGNATURES``: ``verify`` (default) refuses a bad signature and loads an unsigned
model with a warning (models built elsewhere, e.g. inside a bento or container image, carry no
signature of this machine); ``require`` refuses unsigned models too (deployments that sign);
``off`` skips the check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path

from botkit.core import keys
from botkit.core.config import settings

__all__ = ["SignatureError", "check", "sign", "signature_path"]

log = logging.getLogger(__name__)


class SignatureError(RuntimeError):
    """The model's files do not match its signature, or a required signature is missing."""


def signature_path(tag: str) -> Path:
    name, _, version = tag.partition(":")
    root = settings.signatures_dir or settings.home / "signatures"
    return Path(root) / name / f"{version or 'latest'}.sig"


def _mac(tag: str, artefacts: dict[str, str]) -> str:
    body = json.dumps({"tag": tag, "artefacts": dict(sorted(artefacts.items()))}, sort_keys=True,
                      separators=(",", ":")).encode()
    return hmac.new(keys.key("audit"), body, hashlib.sha256).hexdigest()


def sign(tag: str, artefacts: dict[str, str]) -> Path:
    """Write the signature of ``tag`` with these artefact hashes; returns its path."""
    path = signature_path(tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tag": tag, "artefacts": artefacts, "alg": "hmac-sha256",
                                "mac": _mac(tag, artefacts)}, indent=1) + "\n")
    return path


def check(tag: str, artefacts: dict[str, str], mode: str | None = None) -> None:
    """Raise :class:`SignatureError` unless the actual ``artefacts`` hashes carry ``tag``'s signature."""
    mode = (mode or settings.model_signatures).lower()
    if mode == "off":
        return
    path = signature_path(tag)
    if not path.exists():
        if mode == "require":
            raise SignatureError(f"model {tag}: no signature at {path} (BOTKIT_MODEL_SIGNATURES=require)")
        log.warning("model %s is not signed (%s missing); loading it anyway", tag, path)
        return
    try:
        saved = json.loads(path.read_text())
        mac = str(saved["mac"])
    except (ValueError, KeyError, TypeError):
        raise SignatureError(f"model {tag}: unreadable signature {path}") from None
    if not hmac.compare_digest(mac, _mac(tag, artefacts)):
        raise SignatureError(f"model {tag}: its files do not match the signature in {path} "
                             "(tampered, even if its recorded sha256 was rewritten); refusing to load it")
