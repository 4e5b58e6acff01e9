"""Generated manifests must pass the real validator, and a broken one must not."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from botkit.ops.k8s import HEADER, K8sSettings, render, validate, write

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
CUSTOM = K8sSettings(
    name="shopbot",
    namespace="bots",
    image="registry.example/shopbot:1.2.3",
    replicas=4,
    cpu_request="250m",
    cpu_limit="2",
    memory_request="256Mi",
    memory_limit="2Gi",
    min_replicas=3,
    max_replicas=12,
    target_cpu=65,
    port=8080,
    service_monitor=True,
)


def _objects(settings: K8sSettings) -> dict[str, dict[str, Any]]:
    return {name: yaml.safe_load(text) for name, text in render(settings).items()}


def _container(settings: K8sSettings) -> dict[str, Any]:
    (container,) = _objects(settings)["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    return container


def _broken_variants() -> dict[str, str]:
    """File name -> YAML text, each with one mistake the validator (or validate()) must catch."""
    base = _objects(K8sSettings())
    variants: dict[str, Any] = {}

    unknown_field = copy.deepcopy(base["deployment.yaml"])
    unknown_field["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["initialDelay"] = 5
    variants["unknown_field.yaml"] = unknown_field

    replicas_as_text = copy.deepcopy(base["deployment.yaml"])
    replicas_as_text["spec"]["replicas"] = "two"
    variants["replicas_as_text.yaml"] = replicas_as_text

    # kubernetes-validate only warns (exit 0) when it has no schema; validate() must not.
    misspelt_kind = copy.deepcopy(base["deployment.yaml"])
    misspelt_kind["kind"] = "Deploymnet"
    variants["misspelt_kind.yaml"] = misspelt_kind

    unknown_version = copy.deepcopy(base["hpa.yaml"])
    unknown_version["apiVersion"] = "autoscaling/v3"
    variants["unknown_version.yaml"] = unknown_version

    # --quiet would let an object without metadata through silently.
    no_metadata = copy.deepcopy(base["service.yaml"])
    del no_metadata["metadata"]
    variants["no_metadata.yaml"] = no_metadata

    texts = {name: yaml.safe_dump(obj) for name, obj in variants.items()}
    # Comes first on purpose: the tool itself aborts at unparsable YAML, skipping later files.
    return {"a_unparsable.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: x\n", **texts}


@pytest.fixture(scope="module")
def broken_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Validate every broken variant in one run (each run costs a second of start-up)."""
    folder = tmp_path_factory.mktemp("broken")
    paths = []
    for name, text in sorted(_broken_variants().items()):
        (folder / name).write_text(text)
        paths.append(folder / name)
    errors = validate(paths)
    return {path.name: [e for e in errors if str(path) in e] for path in paths}


def test_default_and_custom_manifests_pass_strict_validation(tmp_path: Path) -> None:
    paths = write(K8sSettings(), tmp_path / "default") + write(CUSTOM, tmp_path / "custom")
    assert len(paths) == 9 + 2 * 4  # + the event stream each: Secret, Redis StatefulSet, its Service, NetworkPolicy
    assert validate(paths) == []


def test_committed_example_manifests_pass_strict_validation() -> None:
    assert validate(sorted(DEPLOY_DIR.glob("*.yaml"))) == []


def test_unknown_field_fails_validation(broken_errors: dict[str, list[str]]) -> None:
    (error,) = broken_errors["unknown_field.yaml"]
    assert "initialDelay" in error


def test_wrong_type_for_replicas_fails_validation(broken_errors: dict[str, list[str]]) -> None:
    (error,) = broken_errors["replicas_as_text.yaml"]
    assert "spec.replicas" in error and "'two'" in error


def test_misspelt_kind_fails_validation(broken_errors: dict[str, list[str]]) -> None:
    (error,) = broken_errors["misspelt_kind.yaml"]
    assert "Deploymnet" in error


def test_unknown_api_version_fails_validation(broken_errors: dict[str, list[str]]) -> None:
    (error,) = broken_errors["unknown_version.yaml"]
    assert "autoscaling/v3" in error


def test_object_without_metadata_fails_validation(broken_errors: dict[str, list[str]]) -> None:
    assert broken_errors["no_metadata.yaml"]


def test_unparsable_yaml_fails_without_hiding_errors_in_other_files(
    broken_errors: dict[str, list[str]],
) -> None:
    assert broken_errors["a_unparsable.yaml"]
    assert all(broken_errors.values()), "every broken file must be reported"


def test_validate_without_files_reports_nothing() -> None:
    assert validate([]) == []


def test_validate_reports_missing_files(tmp_path: Path) -> None:
    (error,) = validate([tmp_path / "absent.yaml"])
    assert "absent.yaml" in error


def test_probes_point_at_livez_and_readyz_on_the_service_port() -> None:
    for settings in (K8sSettings(), CUSTOM):
        container = _container(settings)
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": settings.port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": settings.port}
        assert container["startupProbe"]["httpGet"]["path"] == "/livez"
        assert container["ports"] == [{"name": "http", "containerPort": settings.port, "protocol": "TCP"}]


def test_hpa_uses_autoscaling_v2_with_given_bounds_and_target() -> None:
    hpa = _objects(CUSTOM)["hpa.yaml"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    spec = hpa["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 12)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shopbot"}
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 65}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0


def test_pod_runs_as_non_root_bentoml_user_with_minimal_privileges() -> None:
    deployment = _objects(K8sSettings())["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 1034
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(K8sSettings())["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in _container(K8sSettings())["volumeMounts"]}
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert mounts == {"/tmp", "/var/run/botkit"} and all("emptyDir" in v for v in volumes)
    env = {e["name"]: e.get("value") for e in _container(K8sSettings())["env"]}
    assert env["BENTOML_HOME"].startswith("/var/run/botkit/")  # metrics files on the emptyDir


def test_settings_flow_into_the_deployment() -> None:
    deployment = _objects(CUSTOM)["deployment.yaml"]
    assert deployment["metadata"] == {
        "name": "shopbot",
        "namespace": "bots",
        "labels": {
            "app.kubernetes.io/name": "shopbot",
            "app.kubernetes.io/component": "server",
            "app.kubernetes.io/managed-by": "botkit",
        },
    }
    assert deployment["spec"]["replicas"] == 4
    container = _container(CUSTOM)
    assert container["image"] == "registry.example/shopbot:1.2.3"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }


def test_deployment_rolls_out_and_shuts_down_without_dropping_requests() -> None:
    deployment = _objects(K8sSettings())["deployment.yaml"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 5 + K8sSettings().events_flush_bound_s
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and 0 < int(command[1]) < pod["terminationGracePeriodSeconds"]
    assert {"name": "BENTOML_DO_NOT_TRACK", "value": "true"} in pod["containers"][0]["env"]


def test_selectors_match_the_pod_labels() -> None:
    objects = _objects(CUSTOM)
    pod_labels = objects["deployment.yaml"]["spec"]["template"]["metadata"]["labels"]
    selectors = [
        objects["deployment.yaml"]["spec"]["selector"]["matchLabels"],
        objects["service.yaml"]["spec"]["selector"],
        objects["pdb.yaml"]["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()


def test_service_maps_port_80_to_the_container_port() -> None:
    service = _objects(CUSTOM)["service.yaml"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]


def test_pdb_keeps_one_pod_available() -> None:
    pdb = _objects(K8sSettings())["pdb.yaml"]
    assert (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_service_monitor_only_when_asked_and_scrapes_the_named_port() -> None:
    assert "servicemonitor.yaml" not in render(K8sSettings())
    monitor = _objects(CUSTOM)["servicemonitor.yaml"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["bots"]}


def test_every_file_is_one_object_with_a_generated_header() -> None:
    for name, text in render(CUSTOM).items():
        assert text.startswith(HEADER), name
        assert text.splitlines()[1].startswith("# "), name  # says what the object is for
        assert len(list(yaml.safe_load_all(text))) == 1, name


def test_names_that_look_like_yaml_keywords_stay_strings() -> None:
    objects = _objects(K8sSettings(name="null", namespace="true"))
    assert objects["service.yaml"]["metadata"]["name"] == "null"
    assert objects["service.yaml"]["metadata"]["namespace"] == "true"


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "Bot_Kit"},
        {"name": "1bot"},
        {"namespace": "Default"},
        {"image": ""},
        {"cpu_request": "half"},
        {"memory_limit": "1GB"},
        {"cpu_request": "2", "cpu_limit": "1500m"},
        {"memory_request": "2Gi", "memory_limit": "1024Mi"},
        {"replicas": "2"},
        {"min_replicas": 5, "max_replicas": 4},
        {"target_cpu": 0},
        {"port": 70000},
    ],
)
def test_settings_reject_values_the_api_server_would_refuse(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        K8sSettings(**changes)


def test_write_removes_stale_generated_files_but_not_foreign_ones(tmp_path: Path) -> None:
    write(K8sSettings(service_monitor=True), tmp_path)
    (tmp_path / "notes.yaml").write_text("kind: Mine\n")
    paths = write(K8sSettings(), tmp_path)
    assert sorted(p.name for p in paths) == ["deployment.yaml", "hpa.yaml", "networkpolicy.yaml", "pdb.yaml",
                                             "redis-secret.yaml", "redis-service.yaml", "redis-statefulset.yaml",
                                             "service.yaml"]
    assert not (tmp_path / "servicemonitor.yaml").exists()
    assert (tmp_path / "notes.yaml").exists()
    assert (tmp_path / "deployment.yaml").read_text() == render(K8sSettings())["deployment.yaml"]


def test_committed_example_manifests_match_the_defaults() -> None:
    rendered = render(K8sSettings())
    committed = {p.name: p.read_text() for p in DEPLOY_DIR.glob("*.yaml")}
    assert committed == rendered, "re-run write(K8sSettings(), Path('deploy/k8s'))"


def test_every_pod_writes_the_shared_redis_stream_with_its_url_from_a_secret() -> None:
    objects = _objects(K8sSettings())
    env = {e["name"]: e for e in _container(K8sSettings())["env"]}
    assert env["BOTKIT_EVENTS_BACKEND"]["value"] == "redis"
    ref = env["BOTKIT_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    secret = objects["redis-secret.yaml"]
    assert ref == {"name": secret["metadata"]["name"], "key": "url"}
    assert secret["stringData"]["url"] == "redis://botkit-redis.default.svc:6379/0"
    redis_svc = objects["redis-service.yaml"]
    assert redis_svc["metadata"]["name"] == "botkit-redis"  # the host in the Secret's URL


def test_redis_keeps_its_data_on_a_volume_with_aof_and_bounded_memory() -> None:
    sts = _objects(K8sSettings(redis_storage="5Gi"))["redis-statefulset.yaml"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    (redis,) = sts["spec"]["template"]["spec"]["containers"]
    args = redis["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert {"name": "data", "mountPath": "/data"} in redis["volumeMounts"]


def test_only_the_bot_pods_may_reach_redis() -> None:
    objects = _objects(K8sSettings())
    policy = objects["networkpolicy.yaml"]["spec"]
    redis_labels = objects["redis-statefulset.yaml"]["spec"]["template"]["metadata"]["labels"]
    bot_labels = objects["deployment.yaml"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= redis_labels.items()
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= bot_labels.items()
    assert not source["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_a_managed_redis_url_renders_no_redis_of_our_own(tmp_path: Path) -> None:
    managed = K8sSettings(redis_url="rediss://bot:secret@redis.example:6380/0")
    files = render(managed)
    assert "redis-statefulset.yaml" not in files and "networkpolicy.yaml" not in files
    assert yaml.safe_load(files["redis-secret.yaml"])["stringData"]["url"] == managed.redis_url
    assert "secret@" not in files["deployment.yaml"]  # the password stays in the Secret
    write(K8sSettings(), tmp_path)
    paths = write(managed, tmp_path)
    assert not (tmp_path / "redis-statefulset.yaml").exists()
    assert validate(paths) == []
    with pytest.raises(ValueError):
        K8sSettings(redis_url="http://not-redis")


def test_grace_period_covers_the_event_writers_flush_bound() -> None:
    for bound in (0, 10, 60):
        pod = _objects(K8sSettings(events_flush_bound_s=bound))["deployment.yaml"]["spec"]["template"]["spec"]
        sleep = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["BOTKIT_EVENTS_FLUSH_BOUND_S"] == str(bound)
        assert pod["terminationGracePeriodSeconds"] >= sleep + bound + 5
