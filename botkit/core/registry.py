"""Versioned models in the BentoML model store, with their lineage and a stage label.

A model is two files: ``pipeline.skops`` (the scikit-learn pipeline, stored with skops so that
loading it never runs code) and ``bot.json`` (threshold, replies, parameters). Their sha256
sits in the store's metadata next to the metrics, the data fingerprint and the git commit,
so a tampered or foreign artefact is refused before anything is deserialised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from botkit import __version__
from botkit.core import signing
from botkit.core.config import configure_bentoml, settings
from botkit.core.data import Dataset
from botkit.core.embeddings import EmbeddingsError
from botkit.core.model import IntentModel

__all__ = [
    "STAGES",
    "TRUSTED_TYPES",
    "LoadedModel",
    "RegistryError",
    "get_info",
    "library_versions",
    "list_models",
    "load_model",
    "resolve_tag",
    "save_model",
    "set_stage",
    "version_drift",
]

STAGES = ("staging", "production", "archived")
PIPELINE_FILE, BOT_FILE = "pipeline.skops", "bot.json"
# Types skops may build beyond its own defaults (scikit-learn estimators, numpy, scipy):
# none. Anything else found in an artefact is refused, not loaded.
TRUSTED_TYPES: list[str] = []
_EXPECTED_STEPS = ("FeatureUnion", {"LinearSVC", "LogisticRegression"})


class RegistryError(RuntimeError):
    """A model that cannot be found, trusted or loaded; the message says which and why."""


@dataclass(frozen=True)
class LoadedModel:
    model: IntentModel
    tag: str
    info: dict


def _bentoml():
    configure_bentoml()  # the store is <BOTKIT_HOME>/bentoml and tracking is off before BentoML reads them
    import bentoml

    return bentoml


# Libraries whose version decides how a stored pipeline loads and predicts; recorded at save,
# compared at load. botkit's own version is recorded too (its model code reads bot.json).
VERSIONED = ("scikit-learn", "skops", "numpy")


def library_versions() -> dict[str, str]:
    """The versions of scikit-learn, skops, numpy and botkit in this process."""
    from importlib.metadata import version

    return {**{name: version(name) for name in VERSIONED}, "botkit": __version__}


def version_drift(saved: dict | None) -> dict[str, tuple[str, str]]:
    """``{library: (saved, now)}`` for every recorded version that differs from this process's."""
    now = library_versions()
    return {k: (str(v), now[k]) for k, v in (saved or {}).items() if k in now and str(v) != now[k]}


def _warn_drift(tag: str, saved: dict | None) -> None:
    drift = version_drift(saved)
    if drift:
        saved_s = ", ".join(f"{k} {a}" for k, (a, _) in drift.items())
        now_s = ", ".join(f"{k} {b}" for k, (_, b) in drift.items())
        warnings.warn(f"model {tag} was saved with {saved_s} but runs with {now_s}: predictions may differ "
                      "(retrain it, or install the versions it was saved with)", RuntimeWarning, stacklevel=3)


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def save_model(model: IntentModel, ds: Dataset, metrics: dict, *, name: str = "shopbot",
               stage: str = "staging", parent: str | None = None) -> str:
    """Store a trained model with its metadata; returns the new tag (``name:version``)."""
    import skops.io as sio

    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
    # BentoML metadata takes no None: a metric that does not apply (no OOS data) is left out.
    headline = {k: metrics[k] for k in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1")
                if metrics.get(k) is not None}
    metadata = {
        "botkit_version": __version__,
        "versions": library_versions(),  # compared when the model is loaded (warns on a difference)
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit() or "unknown",
        "data_name": ds.name,
        "data_fingerprint": ds.fingerprint(),
        "data_sizes": ds.sizes(),
        "n_intents": len(ds.intents),
        "params": model.params.to_dict(),
        "recipe": model.params.recipe,
        "embeddings": model.embeddings or {},
        "threshold": round(model.threshold, 4),
        "train_seconds": round(model.train_seconds, 3),
        "metrics": headline,
        "latency": metrics.get("latency", {}),
        "parent": parent or "",
        "owner": settings.owner or settings.os_user,
    }
    bento = _bentoml()
    with bento.models.create(name, labels={"stage": stage, "bot": ds.name}, metadata=metadata) as ref:
        root = Path(ref.path)
        sio.dump(model.pipeline, root / PIPELINE_FILE, compression=zipfile.ZIP_DEFLATED)
        # Everything but the pipeline, as JSON (embedding centroids as lists, the weights by hash).
        (root / BOT_FILE).write_text(json.dumps(model.state(), indent=1, ensure_ascii=False))
        (root / "metrics.json").write_text(json.dumps(metrics, indent=1))
        ref.info.metadata["artifact_sha256"] = {f: _sha256(root / f) for f in (PIPELINE_FILE, BOT_FILE)}
        tag = str(ref.tag)
    signing.sign(tag, ref.info.metadata["artifact_sha256"])  # kept apart from the model store
    return tag


def _all(name: str | None = None) -> list:
    bento = _bentoml()
    try:
        models = bento.models.list(name) if name else bento.models.list()
    except Exception:  # bentoml raises NotFound for an unknown name
        return []
    return sorted(models, key=lambda m: m.info.creation_time)


def resolve_tag(tag: str | None = None, name: str = "shopbot") -> str:
    """An explicit tag, else the newest ``production`` model, else the newest model."""
    if tag:
        bento = _bentoml()
        try:
            return str(bento.models.get(tag).tag)
        except Exception:
            raise RegistryError(f"unknown model {tag!r} (see `botkit models list`)") from None
    models = _all(name)
    if not models:
        raise RegistryError(f"no model named {name!r} in the store {settings.bentoml_home}: "
                            "run `botkit train` first")
    production = [m for m in models if m.info.labels.get("stage") == "production"]
    return str((production or models)[-1].tag)


def get_info(tag: str) -> dict:
    """Metadata, labels, path and creation time of one model, as plain data."""
    bento = _bentoml()
    try:
        m = bento.models.get(tag)
    except Exception:
        raise RegistryError(f"unknown model {tag!r} (see `botkit models list`)") from None
    return {"tag": str(m.tag), "stage": m.info.labels.get("stage", ""), "labels": dict(m.info.labels),
            "created": m.info.creation_time.isoformat(timespec="seconds"), "path": str(m.path),
            "metadata": dict(m.info.metadata)}


def list_models(name: str | None = None) -> list[dict]:
    return [get_info(str(m.tag)) for m in _all(name)]


def load_model(tag: str | None = None, name: str = "shopbot") -> LoadedModel:
    """Load and verify a model; refuses artefacts whose hash or types are not what was stored."""
    import skops.io as sio

    resolved = resolve_tag(tag, name)
    info = get_info(resolved)
    _warn_drift(resolved, info["metadata"].get("versions"))
    root = Path(info["path"])
    expected = info["metadata"].get("artifact_sha256") or {}
    for f in (PIPELINE_FILE, BOT_FILE):
        path = root / f
        if not path.exists():
            raise RegistryError(f"model {resolved}: {f} is missing from {root}")
        if expected.get(f) != _sha256(path):
            raise RegistryError(f"model {resolved}: {f} does not match its recorded sha256 "
                                "(tampered or foreign artefact); refusing to load it")
    try:
        untrusted = sio.get_untrusted_types(file=root / PIPELINE_FILE)
    except Exception as exc:
        raise RegistryError(f"model {resolved}: {PIPELINE_FILE} is not a skops file ({exc})") from None
    bad = [t for t in untrusted if t not in TRUSTED_TYPES]
    if bad:
        raise RegistryError(f"model {resolved}: refusing untrusted types in the artefact: {', '.join(bad)}")
    pipeline = sio.load(root / PIPELINE_FILE, trusted=TRUSTED_TYPES)
    steps = [type(s).__name__ for _, s in getattr(pipeline, "steps", [])]
    if len(steps) != 2 or steps[0] != _EXPECTED_STEPS[0] or steps[1] not in _EXPECTED_STEPS[1]:
        raise RegistryError(f"model {resolved}: unexpected pipeline {steps}; refusing to serve it")
    try:  # the recorded sha256 sits next to the files (a rewriter fixes it); the signature does not
        signing.check(resolved, {f: _sha256(root / f) for f in (PIPELINE_FILE, BOT_FILE)})
    except signing.SignatureError as exc:
        raise RegistryError(str(exc)) from None
    bot = json.loads((root / BOT_FILE).read_text())
    try:
        model = IntentModel.from_state(pipeline, bot)
    except EmbeddingsError as exc:
        raise RegistryError(f"model {resolved}: {exc}") from None
    return LoadedModel(model, resolved, info)


def set_stage(tag: str, stage: str) -> str | None:
    """Label a model; promoting to production archives the previous production model.

    Returns the tag of the model that was production before, if any. BentoML keeps labels in
    ``model.yaml`` and offers no update call, so the file is rewritten atomically.
    """
    import yaml

    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
    target = get_info(tag)
    previous = None
    if stage == "production":
        name = target["tag"].split(":")[0]
        for m in list_models(name):
            if m["stage"] == "production" and m["tag"] != target["tag"]:
                _write_label(Path(m["path"]), "archived", yaml)
                previous = m["tag"]
    _write_label(Path(target["path"]), stage, yaml)
    return previous


def _write_label(root: Path, stage: str, yaml) -> None:
    path = root / "model.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.setdefault("labels", {})["stage"] = stage
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
