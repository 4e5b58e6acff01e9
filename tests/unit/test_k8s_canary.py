"""`botkit k8s --canary`: stable and canary Deployments, strictly valid, with botkit's own analysis queries."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from botkit.ops import k8s
from botkit.ops.k8s_canary import TRACK, CanarySettings, render_canary, write_canary
from botkit.ops.releases.queries import canary_queries


def _docs(tmp_path, replicas=10, weight=10):
    paths = write_canary(k8s.K8sSettings(replicas=replicas), CanarySettings("shopbot:new", "shopbot:old", weight),
                         tmp_path)
    return paths, {p.name: yaml.safe_load(p.read_text()) for p in paths}


def test_canary_manifests_pass_strict_validation(tmp_path):
    paths, _ = _docs(tmp_path)
    assert k8s.validate(paths) == []


def test_pods_split_by_weight_and_each_track_serves_its_model(tmp_path):
    _, docs = _docs(tmp_path, replicas=10, weight=10)
    stable, canary = docs["deployment.yaml"], docs["deployment-canary.yaml"]
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (9, 1)

    def model(d):
        env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        return {e["name"]: e.get("value") for e in env}["BOTKIT_MODEL_TAG"]

    assert (model(stable), model(canary)) == ("shopbot:old", "shopbot:new")


def test_selectors_do_not_overlap_and_the_service_reaches_both_tracks(tmp_path):
    _, docs = _docs(tmp_path)
    sel = {n: docs[n]["spec"]["selector"]["matchLabels"] for n in ("deployment.yaml", "deployment-canary.yaml")}
    assert sel["deployment.yaml"][TRACK] == "stable" and sel["deployment-canary.yaml"][TRACK] == "canary"
    for name, s in sel.items():  # each Deployment's template carries its own selector labels
        assert s.items() <= docs[name]["spec"]["template"]["metadata"]["labels"].items()
    svc = docs["service.yaml"]["spec"]["selector"]
    assert TRACK not in svc
    for name in sel:
        assert svc.items() <= docs[name]["spec"]["template"]["metadata"]["labels"].items()


def test_analysis_configmap_holds_the_same_queries_as_botkit(tmp_path):
    _, docs = _docs(tmp_path)
    data = docs["canary-analysis.yaml"]["data"]
    queries = json.loads(data["queries.json"])
    assert queries == canary_queries('track="canary",app="botkit"', 'track="stable",app="botkit"', "5m")
    names = [m["name"] for m in json.loads(data["analysis.json"])["metrics"]]
    assert {"error_rate", "latency_ms", "fallback_rate"} <= set(names)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) not installed")
def test_every_canary_query_is_valid_promql(tmp_path):
    rules = [{"record": f"botkit:canary:{m}:{g}", "expr": q}
             for m, groups in canary_queries('track="canary"', 'track="stable"').items() for g, q in groups.items()]
    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "canary", "rules": rules}]}))
    r = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("weight", [0, 51])
def test_weight_out_of_range_is_refused(weight):
    with pytest.raises(ValueError):
        CanarySettings("shopbot:new", weight=weight)


def test_render_keeps_the_other_manifests():
    files = render_canary(k8s.K8sSettings(), CanarySettings("shopbot:new"))
    assert {"service.yaml", "hpa.yaml", "pdb.yaml"} <= set(files)
