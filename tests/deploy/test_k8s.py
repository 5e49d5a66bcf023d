"""The Kubernetes manifests (deploy/k8s), rendered with kustomize and checked without a
cluster: every object against the Kubernetes API schemas (kubernetes-validate, strict),
then the API's pods: probes, resources, security, volumes, shutdown and the wiring
Ingress -> Service -> pod. The Jobs, secrets and databases: tests/deploy/test_k8s_jobs.py."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.kustomize import env_of, find, pod_specs, render, require_renderer

FOLDERS = ["base", "overlays/dev", "overlays/prod"]
# The newest release kubernetes-validate knows, and an older one still offered by the
# managed services: the manifests use nothing either lacks.
K8S_VERSIONS = ["1.33", "1.37"]
# Custom resources have no schema in kubernetes-validate. There is one, the CloudNativePG
# Cluster in overlays/prod/cnpg-cluster.example.yaml, which no overlay renders (checked
# for its names in test_k8s_jobs.py); one rendered here fails this test.
CUSTOM_GROUPS = {"postgresql.cnpg.io"}
GRACEFUL_TIMEOUT_S = 20  # uvicorn's, in `digitlab serve`
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


@pytest.fixture(params=FOLDERS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def api_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment", "digitlab-api")["spec"]["template"]
    return spec


def api_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = api_pod(objects)["spec"]["containers"]
    assert [c["name"] for c in containers] == ["api"]
    container: dict[str, Any] = containers[0]
    return container


def test_without_kustomize_it_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    # Caught as BaseException: a skip where a failure is due must fail this test, not skip it.
    for required, outcome in [("0", pytest.skip.Exception), ("1", pytest.fail.Exception)]:
        monkeypatch.setenv("DIGITLAB_REQUIRE_KUSTOMIZE", required)
        with pytest.raises(BaseException, match="install kubectl") as raised:
            require_renderer()
        assert raised.type is outcome, required


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(
    objects: list[dict[str, Any]], version: str
) -> None:
    assert objects
    for obj in objects:
        assert obj["apiVersion"].split("/")[0] not in CUSTOM_GROUPS
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(p) for p in error.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {where}: {error.message}")


def test_api_probes_ask_the_health_routes_on_the_served_port(
    objects: list[dict[str, Any]],
) -> None:
    api = api_container(objects)
    (port,) = api["ports"]
    assert env_of(api)["DIGITLAB_PORT"]["value"] == str(port["containerPort"]) == "8000"
    assert env_of(api)["DIGITLAB_HOST"]["value"] == "0.0.0.0"
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = api[probe]["httpGet"]
        assert get["port"] in (port["name"], port["containerPort"]), probe
        paths[probe] = get["path"]
    # Liveness must not depend on the database: a database outage would restart every pod.
    assert paths == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    annotations = api_pod(objects)["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_every_container_has_requests_and_limits(objects: list[dict[str, Any]]) -> None:
    for workload, spec in pod_specs(objects).items():
        for container in spec["containers"]:
            resources = container["resources"]
            for key in ("requests", "limits"):
                assert set(resources[key]) == {"cpu", "memory"}, (workload, key)
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                assert request <= quantity(resources["limits"][resource]), (workload, resource)


def quantity(text: str | int) -> float:
    """A Kubernetes quantity (500m, 2, 256Mi, 1Gi) as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(text))
    assert match, text
    return float(match.group(1)) * units.get(match.group(2) or "", 1)


def test_every_pod_runs_locked_down(objects: list[dict[str, Any]]) -> None:
    for workload, spec in pod_specs(objects).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, workload
        assert pod["runAsUser"] != 0, workload
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert spec["automountServiceAccountToken"] is False, workload
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, workload
            assert context["readOnlyRootFilesystem"] is True, workload
            assert context["capabilities"] == {"drop": ["ALL"]}, workload
    # The images' user: uid 10001 `digitlab`.
    assert api_pod(objects)["spec"]["securityContext"]["runAsUser"] == 10001


def test_api_writes_only_to_its_own_empty_dirs(objects: list[dict[str, Any]]) -> None:
    """Each pod caches the model from PostgreSQL: no shared, node or claimed volume."""
    spec = api_pod(objects)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert all(set(v) == {"name", "emptyDir"} for v in volumes.values()), volumes
    mounts = {m["mountPath"]: m["name"] for m in api_container(objects)["volumeMounts"]}
    model_dir = env_of(api_container(objects))["DIGITLAB_MODEL_DIR"]["value"]
    assert set(mounts) == {"/tmp", model_dir}
    assert set(mounts.values()) <= set(volumes)


def test_api_shuts_down_gracefully(objects: list[dict[str, Any]]) -> None:
    spec = api_pod(objects)["spec"]
    command = api_container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep_s = int(command[1])
    assert 2 <= sleep_s <= 15
    assert spec["terminationGracePeriodSeconds"] > sleep_s + GRACEFUL_TIMEOUT_S
    assert api_container(objects)["args"][:2] == ["serve", "--workers"]
    strategy = find(objects, "Deployment", "digitlab-api")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_api_pods_spread_over_nodes_and_zones(objects: list[dict[str, Any]]) -> None:
    template = api_pod(objects)
    constraints = template["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in constraints:
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert matches(constraint["labelSelector"]["matchLabels"], template["metadata"]["labels"])


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def test_selectors_pick_the_api_pods_and_only_them(objects: list[dict[str, Any]]) -> None:
    labels = api_pod(objects)["metadata"]["labels"]
    deployment = find(objects, "Deployment", "digitlab-api")
    service = find(objects, "Service", "digitlab-api")
    budget = find(objects, "PodDisruptionBudget", "digitlab-api")
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": service["spec"]["selector"],
        "PodDisruptionBudget": budget["spec"]["selector"]["matchLabels"],
    }
    others = [
        t["metadata"]["labels"]
        for o in objects
        if o is not deployment and "template" in o.get("spec", {})
        for t in [o["spec"]["template"]]
    ]
    assert others  # the Jobs (and the dev database)
    for kind, selector in selectors.items():
        assert matches(selector, labels), kind
        assert not any(matches(selector, other) for other in others), kind
    assert budget["spec"]["maxUnavailable"] == 1


def test_hpa_scales_the_deployment_on_cpu(objects: list[dict[str, Any]]) -> None:
    hpa = find(objects, "HorizontalPodAutoscaler", "digitlab-api")
    deployment = find(objects, "Deployment", "digitlab-api")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        deployment["kind"],
        deployment["metadata"]["name"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # The HPA owns the count: a `replicas` here would reset it on every apply.
    assert "replicas" not in deployment["spec"]


def test_ingress_reaches_the_api_container(objects: list[dict[str, Any]]) -> None:
    ingress = find(objects, "Ingress", "digitlab-api")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    service = find(objects, "Service", backend["name"])
    (service_port,) = [
        p
        for p in service["spec"]["ports"]
        if backend["port"] in ({"name": p.get("name")}, {"number": p["port"]})
    ]
    (container_port,) = api_container(objects)["ports"]
    assert service_port["targetPort"] in (container_port["name"], container_port["containerPort"])
    body = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    # Over the API's limit, so the API answers near it with its own JSON 413.
    limit = int(env_of(api_container(objects))["DIGITLAB_MAX_UPLOAD_BYTES"]["value"])
    assert limit == MAX_UPLOAD_BYTES
    assert limit < quantity(body.replace("m", "Mi")) <= 2 * limit


IMAGES = {
    "overlays/dev": {"digitlab-serve:dev", "digitlab-train:dev"},
    "overlays/prod": {
        "registry.example.com/digitlab/digitlab-serve:0.1.0",
        "registry.example.com/digitlab/digitlab-train:0.1.0",
    },
}


@pytest.mark.parametrize("folder", sorted(IMAGES))
def test_overlays_set_the_image_names(folder: str) -> None:
    images = {
        c["image"]
        for spec in pod_specs(render(folder)).values()
        for c in spec["containers"]
        if not c["image"].startswith("postgres:")
    }
    assert images == IMAGES[folder]


def test_prod_ingress_has_a_host_and_its_certificate() -> None:
    ingress = find(render("overlays/prod"), "Ingress", "digitlab-api")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"].endswith(".example.com")  # the placeholder to replace
    assert ingress["spec"]["tls"] == [{"hosts": [rule["host"]], "secretName": "digitlab-tls"}]
