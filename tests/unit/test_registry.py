"""The model store: round trips, stage labels, and refusing artefacts that are not what was stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import skops.io as sio
import yaml
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from botkit import __version__
from botkit.core.model import IntentModel, TrainParams
from botkit.core.registry import (
    PIPELINE_FILE,
    RegistryError,
    get_info,
    list_models,
    load_model,
    resolve_tag,
    save_model,
    set_stage,
)

MORE_TEXTS = ["hello", "where is my order", "refund please", "tell me about the moon", ""]


def _save(trained, name: str, stage: str = "staging") -> str:
    return save_model(trained.model, trained.dataset, trained.evaluation.metrics, name=name, stage=stage)


def _root(tag: str) -> Path:
    return Path(get_info(tag)["path"])


def _record_sha256(tag: str, filename: str) -> None:
    """What an attacker with write access to the store would do: make the recorded hash match."""
    root = _root(tag)
    doc = yaml.safe_load((root / "model.yaml").read_text())
    digest = hashlib.sha256((root / filename).read_bytes()).hexdigest()
    doc["metadata"]["artifact_sha256"][filename] = f"sha256:{digest}"
    (root / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


# --------------------------------------------------------------------------------- round trip


def test_round_trip_gives_identical_predictions(trained, trained_tag: str, tiny_dataset) -> None:
    lm = load_model(trained_tag)
    assert lm.tag == trained_tag
    texts = [t for t, _ in tiny_dataset.test] + MORE_TEXTS
    assert lm.model.predict(texts) == trained.model.predict(texts)
    assert lm.model.threshold == trained.model.threshold
    assert lm.model.temperature == trained.model.temperature
    assert lm.model.replies == trained.model.replies
    assert lm.model.fallback_replies == trained.model.fallback_replies
    assert lm.model.params == trained.model.params


def test_metadata_records_metrics_lineage_and_stage(trained, trained_tag: str, tiny_dataset) -> None:
    info = get_info(trained_tag)
    meta = info["metadata"]
    m = trained.evaluation.metrics
    headline = ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
    assert meta["metrics"] == {k: m[k] for k in headline}
    assert meta["data_fingerprint"] == tiny_dataset.fingerprint()
    assert meta["params"] == trained.model.params.to_dict()
    assert TrainParams.from_dict(meta["params"]) == trained.model.params
    assert meta["botkit_version"] == __version__
    assert isinstance(meta["git_commit"], str) and meta["git_commit"]
    created = dt.datetime.fromisoformat(meta["created_at"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(hours=1)
    assert info["stage"] == info["labels"]["stage"] == "staging"
    assert info["labels"]["bot"] == tiny_dataset.name
    assert set(meta["artifact_sha256"]) == {"pipeline.skops", "bot.json"}


def test_logreg_model_round_trips_too(tiny_dataset, model_name: str) -> None:
    model = IntentModel.train(tiny_dataset, TrainParams(classifier="logreg"))
    metrics = {"in_scope_accuracy": 1.0, "oos_recall": 1.0, "oos_precision": 1.0, "macro_f1": 1.0}
    tag = save_model(model, tiny_dataset, metrics, name=model_name)
    texts = [t for t, _ in tiny_dataset.test] + MORE_TEXTS
    assert load_model(tag).model.predict(texts) == model.predict(texts)


def test_list_models_shows_a_saved_model(trained_tag: str) -> None:
    name = trained_tag.split(":")[0]
    assert [m["tag"] for m in list_models(name)] == [trained_tag]
    assert trained_tag in {m["tag"] for m in list_models()}


# ------------------------------------------------------------------------------------- stages


def test_resolve_tag_prefers_the_newest_production_model(trained, model_name: str) -> None:
    _save(trained, model_name, "production")
    newest_production = _save(trained, model_name, "production")
    newest = _save(trained, model_name, "staging")
    assert resolve_tag(name=model_name) == newest_production
    assert resolve_tag(newest) == newest  # an explicit tag wins


def test_resolve_tag_without_production_takes_the_newest(trained, model_name: str) -> None:
    _save(trained, model_name)
    newest = _save(trained, model_name)
    assert resolve_tag(name=model_name) == newest


def test_promoting_to_production_archives_the_previous_production(trained, model_name: str) -> None:
    first, second = _save(trained, model_name), _save(trained, model_name)
    assert set_stage(first, "production") is None
    assert set_stage(second, "production") == first
    assert get_info(first)["stage"] == "archived"
    assert get_info(second)["stage"] == "production"
    assert resolve_tag(name=model_name) == second
    # Relabelling rewrote model.yaml: the model still loads and its metadata is intact.
    assert load_model(first).info["metadata"]["data_fingerprint"] == trained.dataset.fingerprint()


def test_unknown_stage_is_refused(saved_tag: str, trained) -> None:
    with pytest.raises(RegistryError, match="unknown stage 'live'"):
        set_stage(saved_tag, "live")
    with pytest.raises(RegistryError, match="unknown stage 'live'"):
        _save(trained, "never", "live")


# ---------------------------------------------------------------------- refusing bad artefacts


@pytest.mark.parametrize("filename", ["pipeline.skops", "bot.json"])
def test_tampered_artefact_is_refused_by_its_sha256(saved_tag: str, filename: str) -> None:
    path = _root(saved_tag) / filename
    if filename == "bot.json":  # e.g. switch the fallback off
        bot = json.loads(path.read_text())
        bot["threshold"] = 0.0
        path.write_text(json.dumps(bot))
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match=f"{filename} does not match its recorded sha256"):
        load_model(saved_tag)


class Payload:
    """Stands for any type nobody vetted; loading it must never get as far as building it."""

    built = False

    def __init__(self) -> None:
        self.command = "echo owned"

    def __setstate__(self, state: dict) -> None:
        Payload.built = True
        self.__dict__.update(state)


@pytest.mark.parametrize(
    ("make", "type_name"),
    [
        (lambda: FunctionTransformer(func=os.system), "system"),
        (lambda: Pipeline([("features", FunctionTransformer(func=eval)), ("clf", StandardScaler())]),
         "builtins.eval"),
        (Payload, "Payload"),
    ],
    ids=["function-transformer-os-system", "pipeline-with-eval", "custom-class"],
)
def test_foreign_artefact_with_a_matching_sha256_is_refused_for_untrusted_types(
    saved_tag: str, make, type_name: str
) -> None:
    path = _root(saved_tag) / PIPELINE_FILE
    sio.dump(make(), path)
    _record_sha256(saved_tag, PIPELINE_FILE)  # only the type check is left to stop it
    with pytest.raises(RegistryError, match=f"untrusted types in the artefact: .*{type_name}"):
        load_model(saved_tag)
    assert not Payload.built


def test_trusted_but_unexpected_pipeline_is_refused(saved_tag: str) -> None:
    sio.dump(Pipeline([("scale", StandardScaler())]), _root(saved_tag) / PIPELINE_FILE)
    _record_sha256(saved_tag, PIPELINE_FILE)
    with pytest.raises(RegistryError, match=r"unexpected pipeline \['StandardScaler'\]"):
        load_model(saved_tag)


@pytest.mark.parametrize("rehash", [False, True], ids=["hash-left", "hash-updated"])
def test_pickle_in_place_of_the_skops_file_is_refused(trained, saved_tag: str, rehash: bool) -> None:
    (_root(saved_tag) / PIPELINE_FILE).write_bytes(pickle.dumps(trained.model.pipeline))
    if rehash:
        _record_sha256(saved_tag, PIPELINE_FILE)
    with pytest.raises(RegistryError, match="is not a skops file" if rehash else "sha256"):
        load_model(saved_tag)


def test_missing_artefact_is_refused(saved_tag: str) -> None:
    (_root(saved_tag) / "bot.json").unlink()
    with pytest.raises(RegistryError, match=r"bot\.json is missing"):
        load_model(saved_tag)


# ---------------------------------------------------------------------------------- not found


@pytest.mark.parametrize("call", [load_model, get_info, resolve_tag, lambda t: set_stage(t, "production")],
                         ids=["load_model", "get_info", "resolve_tag", "set_stage"])
def test_unknown_tag_is_refused(call) -> None:
    with pytest.raises(RegistryError, match=r"unknown model 'nosuchmodel:v1' \(see `botkit models list`\)"):
        call("nosuchmodel:v1")


def test_unknown_name_is_refused_pointing_at_botkit_train(model_name: str) -> None:
    with pytest.raises(RegistryError, match=f"no model named '{model_name}'.*run `botkit train` first"):
        load_model(name=model_name)
    assert list_models(model_name) == []


def test_store_fixture_gives_an_empty_store_of_its_own(store: Path, trained, trained_tag: str) -> None:
    assert list_models() == []
    with pytest.raises(RegistryError, match=f"in the store {store}"):
        resolve_tag(name="shopbot")
    with pytest.raises(RegistryError, match="unknown model"):
        get_info(trained_tag)  # the session store is out of sight
    tag = _save(trained, "isolated")
    assert Path(get_info(tag)["path"]).is_relative_to(store)
    assert [m["tag"] for m in list_models()] == [tag]


# ----------------------------------------------------------------------------- regressions


def test_model_whose_oos_metrics_are_undefined_can_be_saved(trained, model_name: str) -> None:
    metrics = {**trained.evaluation.metrics, "oos_recall": None, "oos_precision": None}
    tag = save_model(trained.model, trained.dataset, metrics, name=model_name)
    assert load_model(tag).tag == tag
