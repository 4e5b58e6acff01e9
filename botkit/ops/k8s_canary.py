"""Kubernetes manifests for a canary release: stable and canary Deployments behind one Service.

Plain Deployments rather than an Argo Rollouts ``Rollout``: the Argo CRDs' OpenAPI schemas are
not available offline here, so a Rollout could only be checked for YAML syntax, while plain
Deployments are validated by ``kubernetes-validate --strict`` like the rest of ``botkit k8s``.
The traffic split is by replica count (the Service selects both tracks): 1 canary pod next to 9
stable pods is a 10 % canary. The analysis is rendered as a ConfigMap holding the very PromQL
queries, thresholds and statistics that ``botkit cluster canary`` uses (``releases.queries``,
``core.canary``), so a pipeline job (or an Argo ``AnalysisTemplate`` written from it) can apply
the same rule; pods need a ``track`` label on their series (relabel ``__meta_kubernetes_pod_label_track``).

Both Deployments select on ``app.kubernetes.io/name`` plus ``botkit.dev/track``, so they never
claim each other's pods. Switching an existing ``botkit`` Deployment to canary mode changes its
selector, which Kubernetes does not allow in place: delete and re-apply it once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from botkit.core.canary import DEFAULT_SPECS
from botkit.ops import k8s
from botkit.ops.releases.queries import canary_queries

__all__ = ["CanarySettings", "render_canary", "write_canary"]

TRACK = "botkit.dev/track"
CANARY_FILES = ("deployment.yaml", "deployment-canary.yaml", "canary-analysis.yaml")


@dataclass(frozen=True)
class CanarySettings:
    """The candidate and its share of pods; ``stable_model`` empty means the image's default model."""

    canary_model: str
    stable_model: str = ""
    weight: int = 10  # percent of pods (and so of traffic) on the canary
    window: str = "5m"

    def __post_init__(self) -> None:
        if not self.canary_model:
            raise ValueError("canary_model (a model tag) is required")
        if not 1 <= self.weight <= 50:
            raise ValueError(f"weight must be between 1 and 50 percent, got {self.weight}")

    def split(self, total: int) -> tuple[int, int]:
        """(stable, canary) pod counts for ``total`` pods: at least one of each."""
        canary = max(1, math.ceil(total * self.weight / 100))
        return max(1, total - canary), canary


def _track(doc: dict, name: str, track: str, replicas: int, model: str) -> dict:
    doc = json.loads(json.dumps(doc))  # deep copy
    doc["metadata"]["name"] = name
    doc["metadata"]["labels"][TRACK] = track
    doc["spec"]["replicas"] = replicas
    doc["spec"]["selector"]["matchLabels"][TRACK] = track
    doc["spec"]["template"]["metadata"]["labels"][TRACK] = track
    if model:
        for c in doc["spec"]["template"]["spec"]["containers"]:
            env = [e for e in c.get("env", []) if e.get("name") != "BOTKIT_MODEL_TAG"]
            c["env"] = [*env, {"name": "BOTKIT_MODEL_TAG", "value": model}]
    return doc


def _analysis(ks: k8s.K8sSettings, cs: CanarySettings) -> dict:
    spec = {"weight_percent": cs.weight, "window": cs.window,
            "decision": "promote when score >= 85 and no critical metric fails (botkit.core.canary)",
            "metrics": [asdict(s) for s in DEFAULT_SPECS]}
    queries = canary_queries(f'track="canary",app="{ks.name}"', f'track="stable",app="{ks.name}"', cs.window)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{ks.name}-canary-analysis", "namespace": ks.namespace,
                         "labels": {"app.kubernetes.io/name": ks.name, "app.kubernetes.io/managed-by": "botkit"}},
            "data": {"queries.json": json.dumps(queries, indent=2), "analysis.json": json.dumps(spec, indent=2)}}


def render_canary(ks: k8s.K8sSettings, cs: CanarySettings) -> dict[str, str]:
    """Filename -> YAML: the usual manifests with the Deployment split into stable and canary."""
    files = k8s.render(ks)
    base = yaml.safe_load(files["deployment.yaml"])
    stable_n, canary_n = cs.split(ks.replicas)
    head = (f"{k8s.HEADER} --canary; edit the settings and re-render, not this file.\n"
            "# Comments on each field: see deployment.yaml rendered without --canary.\n")
    files["deployment.yaml"] = head + "# Stable track: production's model.\n" + yaml.safe_dump(
        _track(base, ks.name, "stable", stable_n, cs.stable_model), sort_keys=False)
    files["deployment-canary.yaml"] = head + f"# Canary track: {cs.canary_model} on {canary_n} pod(s).\n" + \
        yaml.safe_dump(_track(base, f"{ks.name}-canary", "canary", canary_n, cs.canary_model), sort_keys=False)
    files["canary-analysis.yaml"] = head + "# The analysis: PromQL per metric and group, thresholds.\n" + \
        yaml.safe_dump(_analysis(ks, cs), sort_keys=False)
    return files


def write_canary(ks: k8s.K8sSettings, cs: CanarySettings, out_dir: Path) -> list[Path]:
    """Write the canary manifests (after ``k8s.write`` tidied any stale generated files)."""
    k8s.write(ks, out_dir)
    paths = []
    for name, text in render_canary(ks, cs).items():
        path = Path(out_dir) / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
