"""Shared fixtures: a throw-away model store for the whole session, a tiny data set, one trained model.

The environment is set at import time, before anything imports botkit or bentoml:
``botkit.core.config`` pins ``BENTOML_HOME`` when it is imported and BentoML caches its store the
first time it is used, so setting the variables in a fixture would be too late and the tests
would write into the developer's real store. Every test shares this one store and must not
assume it is empty: create models under a unique name (``unique_name()``), or use the
``store`` fixture for a store of its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="botkit-tests-"))
atexit.register(shutil.rmtree, _SESSION_ROOT, ignore_errors=True)
os.environ["BOTKIT_HOME"] = str(_SESSION_ROOT / "home")
os.environ["BENTOML_HOME"] = str(_SESSION_ROOT / "home" / "bentoml")
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["BOTKIT_REPORTS_DIR"] = str(_SESSION_ROOT / "reports")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from botkit.core.data import OOS, Dataset  # noqa: E402

SESSION_ROOT = _SESSION_ROOT

# 3 intents x (8 train, 3 val, 3 test) and a few out-of-scope lines; no utterance in two splits.
_TINY = {
    "greeting": (
        ["hello", "hi there", "good morning", "hey", "hiya", "good evening", "hello bot", "hey, how are you"],
        ["hi, anyone here?", "morning!", "howdy"],
        ["hello hello", "hey there bot", "good afternoon"],
    ),
    "order_status": (
        ["where is my order", "has my order shipped", "track my order", "order status please",
         "when will my order arrive", "is my order on its way", "what happened to my order",
         "my order has not arrived"],
        ["where's my parcel order", "did my order ship yet", "status of order 1234"],
        ["can you check my order", "my order is late", "order tracking"],
    ),
    "refund": (
        ["i want a refund", "refund my money", "how do i get a refund", "give me my money back",
         "refund please", "where is my refund", "can i get a refund for this", "request a refund"],
        ["i need my money back", "refund for a broken item", "when do i get my refund"],
        ["money back please", "start a refund", "has my refund been paid"],
    ),
    OOS: (
        ["what is the weather tomorrow", "tell me a joke", "who won the football match",
         "what is the capital of france", "play some music", "how tall is mount everest"],
        ["recommend a pasta recipe", "what time is it in tokyo", "translate cat into german"],
        ["what is the boiling point of water", "who wrote hamlet", "how do planes fly"],
    ),
}
TINY_REPLIES = {
    "greeting": ["Hello! How can I help?", "Hi there, what can I do for you?"],
    "order_status": ["Let me look up your order.", "I can check on your order for you."],
    "refund": ["I can help with your refund.", "Let's sort out that refund."],
}


def make_tiny_dataset(name: str = "tiny") -> Dataset:
    """A fresh copy of the hand-made data set (tests may mutate their copy)."""
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for intent, parts in _TINY.items():
        for split, texts in zip(("train", "val", "test"), parts, strict=True):
            splits[split].extend((t, intent) for t in texts)
    return Dataset(name=name, splits=splits, replies={k: list(v) for k, v in TINY_REPLIES.items()})


def unique_name(prefix: str = "t") -> str:
    """A model name no other test uses, so tests can share the session store."""
    return f"{prefix}{uuid4().hex[:8]}"


@pytest.fixture
def model_name() -> str:
    """A fresh model name for this test."""
    return unique_name()


@pytest.fixture(scope="session")
def tiny_dataset() -> Dataset:
    return make_tiny_dataset().validate()


@pytest.fixture(scope="session")
def trained(tiny_dataset: Dataset):
    """One train/evaluate/register run for the session (a ``TrainResult``); do not change its stage."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    from botkit.ops.pipeline import train_evaluate_register

    store_dir = Path(BentoMLContainer.model_store_dir.get()).resolve()
    assert SESSION_ROOT.resolve() in store_dir.parents, (
        f"bentoml was set up before tests/conftest.py ran and would write to {store_dir}"
    )
    return train_evaluate_register(dataset=tiny_dataset, name=unique_name("tiny"))


@pytest.fixture(scope="session")
def trained_tag(trained) -> str:
    return trained.tag


@pytest.fixture
def saved_tag(trained) -> str:
    """A new store entry (unique name, stage staging) of the session model, free to modify or promote."""
    from botkit.core.registry import save_model

    r = trained
    return save_model(r.model, r.dataset, r.evaluation.metrics, name=unique_name("s"))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty model store of the test's own (``BENTOML_HOME`` and BentoML's cached store both moved).

    Setting the variable alone is not enough once BentoML has resolved its store, so the
    container's providers are patched too (BentoML internals; restored after the test).
    """
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    home = tmp_path / "bentoml"
    models = home / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("BENTOML_HOME", str(home))
    with (
        BentoMLContainer.bentoml_home.patch(str(home)),
        BentoMLContainer.model_store_dir.patch(str(models)),
        BentoMLContainer.model_store.patch(ModelStore(str(models))),
    ):
        yield home
