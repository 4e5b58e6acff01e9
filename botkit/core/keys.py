"""Secret keys kept apart from what they protect, and the keyed hashes made with them.

A plain SHA-256 proves nothing against whoever can write the data: they rehash it. A keyed
hash (HMAC-SHA256) can only be recomputed by whoever holds the key, so the key lives in its own
file (in Kubernetes, a mounted Secret), never next to the audit log, the event store or the
model. Two keys, so that leaking one does not forge the other:

- ``id``: pseudonymous session ids (``Settings.id_key_file``).
- ``audit``: the audit chain and model signatures (``Settings.audit_key_file``).

A missing key file is created on first use (32 random bytes, mode 0600), so a fresh workshop
machine works with no setup; a deployment mounts the same file into every replica so that the
same session gets the same pseudonym everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from botkit.core.config import settings

__all__ = ["KEY_BYTES", "key", "key_path", "keyed_hash"]

KEY_BYTES = 32
_FIELDS = {"id": "id_key_file", "audit": "audit_key_file"}
_cache: dict[Path, bytes] = {}


def key_path(name: str) -> Path:
    """Where key ``name`` (``id`` or ``audit``) lives: the setting, else ``<home>/secrets/<name>.key``."""
    configured = getattr(settings, _FIELDS[name])
    return Path(configured) if configured else settings.home / "secrets" / f"{name}.key"


def key(name: str, path: Path | None = None) -> bytes:
    """The key's bytes, read once per process; created (0600, parent 0700) when missing."""
    path = path or key_path(name)
    if path in _cache:
        return _cache[path]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES).hex().encode())
        try:
            os.link(tmp, path)  # atomic and exclusive: a worker racing us keeps the first key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    raw = path.read_bytes().strip()
    if len(raw) < 16:
        raise ValueError(f"{path}: key too short (need at least 16 bytes)")
    _cache[path] = raw
    return raw


def keyed_hash(name: str, data: str | bytes, path: Path | None = None) -> str:
    """HMAC-SHA256 of ``data`` under key ``name``, as hex."""
    raw = data.encode() if isinstance(data, str) else data
    return hmac.new(key(name, path), raw, hashlib.sha256).hexdigest()
