"""Offline embeddings: loaded from the installed wheel with the network blocked, one-line errors,
and a model refuses weights other than the ones it was trained with."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from botkit.core import embeddings
from botkit.core.embeddings import TOKENIZER_FILE, WEIGHTS_FILE, Embedder, EmbeddingsError


def test_embeddings_load_from_the_wheel_with_every_socket_blocked() -> None:
    """A fresh interpreter where any socket connect raises: loading and embedding must still work."""
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network used while loading embeddings')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "socket.create_connection = refuse\n"
        "from botkit.core.embeddings import embedder\n"
        "e = embedder()\n"
        "v = e.transform(['where is my parcel', 'wo ist mein Paket'])\n"
        "print(v.shape, round(float((v * v).sum(axis=1).min()), 3))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(2, 256) 1.0"


def test_embeddings_are_unit_length_case_insensitive_and_never_nan() -> None:
    e = embeddings.embedder()
    v = e.transform(["Where is my parcel", "WHERE IS MY PARCEL", "🙂🙂", ""])
    assert v.dtype == np.float32 and v.shape == (4, 256)
    assert np.allclose(v[0], v[1])
    assert not np.isnan(v).any()
    assert np.allclose(np.linalg.norm(v[:2], axis=1), 1.0, atol=1e-5)
    assert e.transform([]).shape == (0, 256)


def test_a_missing_weights_file_fails_with_one_clear_line(tmp_path: Path) -> None:
    root = embeddings.package_dir()
    (tmp_path / "tokenizers").mkdir()
    shutil.copy(root / TOKENIZER_FILE, tmp_path / TOKENIZER_FILE)  # tokenizer there, weights missing
    with pytest.raises(EmbeddingsError) as exc:
        Embedder(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert WEIGHTS_FILE.split("/")[-1] in msg and "wordllama==" in msg


def test_a_model_trained_with_other_weights_is_refused() -> None:
    with pytest.raises(EmbeddingsError, match="not the ones the model was trained with"):
        embeddings.embedder(expected_sha256="sha256:" + "0" * 64)


def test_the_reference_names_the_file_and_its_hash() -> None:
    ref = embeddings.reference()
    assert ref["file"] == WEIGHTS_FILE and ref["dim"] == 256
    assert ref["sha256"].startswith("sha256:") and len(ref["sha256"]) == 71


def test_no_socket_module_is_touched_by_prediction(monkeypatch: pytest.MonkeyPatch, tiny_dataset) -> None:
    """Training and predicting with embeddings never opens a connection either."""
    from botkit.core.model import IntentModel, TrainParams

    def refuse(*a, **k):
        raise OSError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    m = IntentModel.train(tiny_dataset, TrainParams(recipe="tfidf+emb"))
    assert m.embeddings and m.embeddings["sha256"] == embeddings.reference()["sha256"]
    assert m.predict_one("where is my order").intent == "order_status"


def test_a_model_stored_before_recipes_loads_as_tfidf_only(tiny_dataset) -> None:
    """bot.json of an older model has no recipe: it must load as the TF-IDF model it was."""
    from botkit.core.model import IntentModel, TrainParams

    old = IntentModel.train(tiny_dataset, TrainParams(recipe="tfidf", oos_score="confidence", fold=False,
                                                      handoff_augment=0.0))
    state = old.state()
    legacy = {k: state[k] for k in ("threshold", "temperature", "replies", "fallback_replies", "train_seconds")}
    legacy["params"] = {k: v for k, v in state["params"].items()
                        if k not in ("recipe", "oos_score", "fold", "emb_weight", "emb_dim", "handoff_augment")}
    again = IntentModel.from_state(old.pipeline, legacy)
    assert again.params.recipe == "tfidf" and again.params.fold is False and again.centroids is None
    texts = [t for t, _ in tiny_dataset.test]
    assert again.predict(texts) == old.predict(texts)


def test_the_embedding_model_state_is_plain_json(tiny_dataset) -> None:
    """Centroids travel as lists in bot.json and come back as the same float32 matrix: no pickle."""
    import json

    from botkit.core.model import IntentModel, TrainParams

    m = IntentModel.train(tiny_dataset, TrainParams(recipe="tfidf+emb"))
    state = json.loads(json.dumps(m.state()))
    assert state["embeddings"]["file"] == WEIGHTS_FILE and state["params"]["recipe"] == "tfidf+emb"
    again = IntentModel.from_state(m.pipeline, state)
    assert again.centroids is not None and np.allclose(again.centroids, m.centroids, atol=1e-6)
    texts = [t for t, _ in tiny_dataset.test]
    assert [p.intent for p in again.predict(texts)] == [p.intent for p in m.predict(texts)]
