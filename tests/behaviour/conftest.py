"""Fixtures of the behaviour tests: which bot is tested, the probe utterances, the measured figures.

Which bot:

* by default, the default bot trained ONCE for the session on the bundled shopbot data with
  ``train_evaluate_register`` (under a unique name in the throw-away store that
  ``tests/conftest.py`` sets up), about 5 s;
* with ``BOTKIT_MODEL_TAG=<name:version>`` that model, with ``BOTKIT_MODEL_TAG=production``
  the newest production model (else the newest), read from the model store the user's
  pipeline trained into: ``BOTKIT_MODEL_STORE`` if set, else ``./.botkit/bentoml`` (where
  ``botkit train`` writes by default). ``tests/conftest.py`` moves ``BENTOML_HOME`` to a temp
  folder for every test, so the store is patched in for the load only; the model is loaded
  with the registry's checks (sha256, trusted types) and is never modified. Set the variable
  for a run of tests/behaviour only: the serving code reads BOTKIT_MODEL_TAG too.

The probes come from ``probes.yaml`` beside this file, or ``BOTKIT_PROBES=path`` for a bot
with other intents. Every figure the tests measure is printed at the end of the run
("behaviour figures") and attached to the JUnit XML as properties.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
import yaml

from botkit.core.config import settings
from botkit.core.data import OOS, Dataset, load
from botkit.core.model import IntentModel, Prediction

PROBES_PATH = Path(os.environ.get("BOTKIT_PROBES") or Path(__file__).with_name("probes.yaml"))
PRODUCTION_ALIASES = ("production", "prod", "newest")

# name -> value, filled by the tests through the ``figure`` fixture, printed by the summary hook.
FIGURES: dict[str, object] = {}


@dataclass(frozen=True)
class Bot:
    """The model under test and where it came from (shown in failure messages)."""

    model: IntentModel
    tag: str
    origin: str
    dataset: Dataset | None = None  # the data it was trained on, when trained here

    def labels(self, texts: Sequence[str]) -> list[str]:
        """Predicted intent per text; ``oos`` whenever the bot falls back."""
        return [p.intent for p in self.model.predict(list(texts))]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.model.predict(list(texts))

    def describe(self) -> str:
        return f"{self.tag} ({self.origin})"


@dataclass(frozen=True)
class Probes:
    intents: dict[str, list[str]]
    out_of_scope: list[str]
    path: Path

    def in_scope(self) -> list[tuple[str, str]]:
        return [(t, i) for i, texts in self.intents.items() for t in texts]


def _load_probes(path: Path) -> Probes:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pytest.fail(f"probe file {path} does not exist (BOTKIT_PROBES={os.environ.get('BOTKIT_PROBES')!r})",
                    pytrace=False)
    if not isinstance(doc, dict) or not isinstance(doc.get("intents"), dict) or "out_of_scope" not in doc:
        pytest.fail(f"{path}: expected a mapping with 'intents' (intent -> list of texts) and 'out_of_scope'",
                    pytrace=False)

    def texts(where: str, value: object) -> list[str]:
        if not isinstance(value, list) or not value or not all(isinstance(t, str) and t.strip() for t in value):
            pytest.fail(f"{path}: {where} must be a non-empty list of non-empty strings", pytrace=False)
        return [t.strip() for t in value]

    intents = {str(k): texts(f"intents.{k}", v) for k, v in doc["intents"].items()}
    if OOS in intents:
        pytest.fail(f"{path}: put out-of-scope probes under 'out_of_scope', not intents.{OOS}", pytrace=False)
    return Probes(intents, texts("out_of_scope", doc["out_of_scope"]), path)


def _load_from_store(wanted: str) -> Bot:
    """The model named by BOTKIT_MODEL_TAG from the user's store, not the session's temp store."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    from botkit.core.registry import RegistryError, load_model

    home = Path(os.environ.get("BOTKIT_MODEL_STORE") or Path.cwd() / ".botkit" / "bentoml").resolve()
    models = home / "models"
    if not models.is_dir():
        pytest.fail(f"BOTKIT_MODEL_TAG={wanted!r}, but {home} is no model store (no models/ folder): set "
                    "BOTKIT_MODEL_STORE to the BENTOML_HOME that `botkit train` wrote to", pytrace=False)
    tag = None if wanted.lower() in PRODUCTION_ALIASES else wanted
    with (
        pytest.MonkeyPatch.context() as mp,
        BentoMLContainer.bentoml_home.patch(str(home)),
        BentoMLContainer.model_store_dir.patch(str(models)),
        BentoMLContainer.model_store.patch(ModelStore(str(models))),
    ):
        mp.setenv("BENTOML_HOME", str(home))
        try:
            loaded = load_model(tag, settings.model_name)
        except RegistryError as exc:
            problem = str(exc)
        else:
            problem = ""
    if problem:
        pytest.fail(f"BOTKIT_MODEL_TAG={wanted!r}: {problem}", pytrace=False)
    stage = loaded.info.get("stage") or "no stage"
    return Bot(loaded.model, loaded.tag, f"{stage}, from the store {home}")


@pytest.fixture(scope="session")
def bot() -> Bot:
    """The bot under test: trained here on the bundled data, or BOTKIT_MODEL_TAG from the user's store."""
    wanted = os.environ.get("BOTKIT_MODEL_TAG", "").strip()
    if wanted:
        return _load_from_store(wanted)
    from botkit.ops.pipeline import train_evaluate_register

    # A name no other test uses: the session store is shared by the whole suite.
    r = train_evaluate_register(name=f"behaviour{uuid4().hex[:8]}")
    return Bot(r.model, r.tag, "trained for this session on the bundled data", r.dataset)


@pytest.fixture(scope="session")
def probes() -> Probes:
    return _load_probes(PROBES_PATH)


@pytest.fixture(scope="session")
def bundled() -> Dataset:
    return load()


@pytest.fixture(scope="session")
def base_utterances(bot: Bot, probes: Probes, bundled: Dataset) -> list[tuple[str, str]]:
    """In-scope ``(text, intent)`` pairs the invariance and directional tests perturb.

    The in-scope probes plus the in-scope test split of the bundled data when the bot knows
    exactly the bundled intents (for another bot: its probes only).
    """
    pairs = [(t, i) for t, i in probes.in_scope() if i in bot.model.intents]
    if set(bot.model.intents) == set(bundled.intents):
        pairs += [(t, i) for t, i in bundled.test if i != OOS]
    return pairs


@pytest.fixture
def figure(record_testsuite_property) -> Iterator[object]:
    """``figure(name, value)``: keep a measured figure for the summary and the JUnit XML (suite properties)."""

    def keep(name: str, value: object) -> None:
        FIGURES[name] = value
        record_testsuite_property(f"behaviour.{name}", value)

    yield keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("behaviour figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name:<40} {value}")
