"""A stored model records the library versions it was saved with; loading it under others warns in one line."""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from botkit import __version__
from botkit.core.registry import get_info, load_model, version_drift


@pytest.fixture
def saved(saved_tag: str) -> str:
    """A store entry of its own (conftest), free to edit."""
    return saved_tag


def _set_saved_version(tag: str, library: str, value: str) -> None:
    """Rewrite the recorded version in model.yaml, as if the model came from another environment."""
    path = Path(get_info(tag)["path"]) / "model.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["versions"][library] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_metadata_records_the_library_versions(saved: str) -> None:
    versions = get_info(saved)["metadata"]["versions"]
    assert versions == {"scikit-learn": version("scikit-learn"), "skops": version("skops"),
                        "numpy": version("numpy"), "botkit": __version__}


def test_loading_under_the_saved_versions_is_silent(saved: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(saved)


def test_loading_under_another_version_warns_in_one_line(saved: str) -> None:
    _set_saved_version(saved, "scikit-learn", "0.0.1")
    with pytest.warns(RuntimeWarning) as caught:
        loaded = load_model(saved)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert f"scikit-learn 0.0.1 but runs with scikit-learn {version('scikit-learn')}" in messages[0]
    assert saved in messages[0] and "skops" not in messages[0]  # only what differs is named
    assert loaded.tag == saved  # a warning, not a refusal


def test_version_drift_names_only_what_differs() -> None:
    assert version_drift(None) == {}
    assert version_drift({"numpy": version("numpy"), "skops": "0.1", "unknown-lib": "9"}) == {
        "skops": ("0.1", version("skops"))}
