"""Offline static word embeddings (wordllama, MIT) loaded from the installed wheel, never the network.

Why: averaged static embeddings add meaning that TF-IDF n-grams miss ("parcel" ~ "package")
for about 0.03 ms per text on CPU. wordllama ships its 256-d weights and tokenizer inside its
wheel, but its own loader looks for the tokenizer in another folder and then downloads; here
the files are located explicitly, downloads are switched off, and a missing or changed file
fails with one line. Models do not store the 16 MB matrix: they record the weight file's name
and sha256, and loading checks the installed file against it.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["EMBEDDING_DIM", "WEIGHTS_FILE", "Embedder", "EmbeddingsError", "embedder", "package_dir",
           "reference"]

WEIGHTS_FILE = "weights/l2_supercat_256.safetensors"
TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
EMBEDDING_DIM = 256
PIN = "wordllama==0.4.0.post1"

class EmbeddingsError(RuntimeError):
    """The embedding files are missing, changed or unloadable; the message says which and what to do."""


def package_dir() -> Path:
    """The installed wordllama package folder (where its wheel put the weights)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # before wordllama imports huggingface_hub (read once there)
    try:
        import wordllama
    except ImportError:
        raise EmbeddingsError(f"wordllama is not installed: `pip install {PIN}` "
                              "(or train with --recipe tfidf)") from None
    return Path(wordllama.__file__).parent


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


class Embedder:
    """Normalised, lowercased sentence embeddings: ``transform(texts) -> float32 (n, 256)``."""

    def __init__(self, root: Path) -> None:
        weights, tokenizer = root / WEIGHTS_FILE, root / TOKENIZER_FILE
        for f in (weights, tokenizer):
            if not f.is_file():
                raise EmbeddingsError(f"embedding file {f} is missing: reinstall `{PIN}` "
                                      "(or train with --recipe tfidf)")
        # wordllama imports huggingface_hub, which reads this once at its import: botkit never downloads.
        # Set here, where the import happens, not when botkit.core is imported.
        os.environ["HF_HUB_OFFLINE"] = "1"
        from wordllama import WordLlama

        try:
            self._wl = WordLlama.load(cache_dir=root, disable_download=True)
        except Exception as exc:  # any loader failure: one line, not a hub traceback
            raise EmbeddingsError(f"cannot load wordllama embeddings from {root}: "
                                  f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
        self.root = root
        self.sha256 = _sha256(weights)

    def transform(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        # Lowercased: the tokenizer splits "WHERE IS MY PARCEL" into other pieces than the
        # lowercase text, and casing must not change an intent.
        # Normalised here, not by wordllama: a text with no known token (only emoji) has a zero
        # vector, which wordllama's norm=True turns into NaN.
        e = np.asarray(self._wl.embed([t.lower() for t in texts], norm=False), dtype=np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), np.float32(1e-9))

    def reference(self) -> dict:
        return {"package": PIN, "file": WEIGHTS_FILE, "sha256": self.sha256, "dim": EMBEDDING_DIM}


@lru_cache(maxsize=4)
def _cached(root: str) -> Embedder:
    return Embedder(Path(root))


def embedder(root: Path | str | None = None, expected_sha256: str | None = None) -> Embedder:
    """The process-wide embedder (loaded once); ``expected_sha256`` is a model's recorded weight hash."""
    emb = _cached(str(root or package_dir()))
    if expected_sha256 and expected_sha256 != emb.sha256:
        raise EmbeddingsError(f"the installed embedding weights {emb.root / WEIGHTS_FILE} ({emb.sha256[:19]}...) "
                              f"are not the ones the model was trained with ({expected_sha256[:19]}...): "
                              f"install `{PIN}` or retrain")
    return emb


def reference() -> dict:
    """Name, file and hash of the installed weights: what a model records instead of the matrix."""
    return embedder().reference()
