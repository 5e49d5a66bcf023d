"""The Kubernetes manifests' Jobs (migrate, train, the sharded scorer), where secrets come
from, and the databases: dev's own PostgreSQL, prod's CloudNativePG example. Rendered
with kustomize as in test_k8s.py."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import yaml

from tests.deploy.kustomize import K8S, env_of, find, pod_specs, render

FOLDERS = ["base", "overlays/dev", "overlays/prod"]
SECRET_ENV = {
    "DIGITLAB_DATABASE_URL": ("digitlab-db-app", "uri"),
    "DIGITLAB_ADMIN_TOKEN": ("digitlab-tokens", "admin-token"),
    "DIGITLAB_VIEWER_TOKEN": ("digitlab-tokens", "viewer-token"),
}
# user:password@ in a URL, or an env value named like a secret.
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|DATABASE_URL")


@pytest.fixture(params=FOLDERS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def only_container(objects: list[dict[str, Any]], job: str) -> dict[str, Any]:
    (container,) = find(objects, "Job", job)["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_jobs_run_the_right_commands_in_the_right_images(objects: list[dict[str, Any]]) -> None:
    migrate = only_container(objects, "digitlab-migrate")
    train = only_container(objects, "digitlab-train")
    score = only_container(objects, "digitlab-score")
    assert migrate["command"] == ["digitlab", "db", "upgrade"]
    assert train["command"] == ["digitlab", "train", "--if-missing"]
    assert score["command"][:2] == ["digitlab", "score"]
    assert "digitlab-serve" in migrate["image"]
    assert "digitlab-train" in train["image"]
    assert "digitlab-serve" in score["image"]  # scoring needs onnxruntime, not torch
    # The trainer retries with back-off until the migrate Job has made the schema.
    assert find(objects, "Job", "digitlab-train")["spec"]["backoffLimit"] >= 5
    for job in ("digitlab-migrate", "digitlab-train", "digitlab-score"):
        assert find(objects, "Job", job)["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_trainer_keeps_models_and_data_in_empty_dirs(objects: list[dict[str, Any]]) -> None:
    spec = find(objects, "Job", "digitlab-train")["spec"]["template"]["spec"]
    env = env_of(spec["containers"][0])
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for variable in ("DIGITLAB_MODEL_DIR", "DIGITLAB_DATA_DIR"):
        volume = volumes[mounts[env[variable]["value"]]]
        assert set(volume) == {"name", "emptyDir"}, variable
    assert env["DIGITLAB_RECIPE"]["value"] in {"fast", "best"}


def test_scorer_is_an_indexed_job_with_one_shard_per_index(
    objects: list[dict[str, Any]],
) -> None:
    job = find(objects, "Job", "digitlab-score")["spec"]
    score = only_container(objects, "digitlab-score")
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] >= 2
    # Applying the stack does not start a bulk run; `kubectl patch` unsuspends it.
    assert job["suspend"] is True
    args = score["args"]
    assert args[args.index("--dataset") + 1] == "mnist"
    assert args[args.index("--split") + 1] == "train"
    shard = re.fullmatch(r"\$\((\w+)\)/(\d+)", args[args.index("--shard") + 1])
    assert shard, args
    variable, count = shard.groups()
    assert int(count) == job["completions"]
    # $(VAR) is expanded only from env declared in the container; else it stays literal.
    field = env_of(score)[variable]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_every_variable_referenced_in_a_command_is_declared(
    objects: list[dict[str, Any]],
) -> None:
    for workload, spec in pod_specs(objects).items():
        for container in spec["containers"]:
            words = container.get("command", []) + container.get("args", [])
            used = set(re.findall(r"\$\((\w+)\)", " ".join(words)))
            assert used <= set(env_of(container)), (workload, used)


def test_database_url_and_tokens_come_from_secrets(objects: list[dict[str, Any]]) -> None:
    for workload, spec in pod_specs(objects).items():
        if workload == "StatefulSet/digitlab-db":
            continue
        for container in spec["containers"]:
            env = env_of(container)
            names = ["DIGITLAB_DATABASE_URL"]
            if workload == "Deployment/digitlab-api":
                names += ["DIGITLAB_ADMIN_TOKEN", "DIGITLAB_VIEWER_TOKEN"]
            for name in names:
                ref = env[name]["valueFrom"]["secretKeyRef"]
                secret, key = SECRET_ENV[name]
                assert ref["key"] == key, (workload, name)
                # dev's generated Secrets carry a content hash after the name.
                assert re.fullmatch(rf"{secret}(-[a-z0-9]{{10}})?", ref["name"]), (workload, name)


def all_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in all_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in all_strings(value)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("folder", ["base", "overlays/prod"])
def test_no_secret_is_written_in_base_or_prod(folder: str) -> None:
    objects = render(folder)
    assert not [o for o in objects if o["kind"] == "Secret"]
    for workload, spec in pod_specs(objects).items():
        for container in spec["containers"]:
            for name, entry in env_of(container).items():
                if SECRET_NAME.search(name):
                    assert "value" not in entry, (workload, name)
    for text in all_strings(objects):
        assert not CREDENTIALS_IN_URL.search(text), text


def test_dev_secrets_are_obviously_dev_values() -> None:
    objects = render("overlays/dev")
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert {s["metadata"]["name"].rsplit("-", 1)[0] for s in secrets} == {
        "digitlab-db-app",
        "digitlab-tokens",
    }
    for secret in secrets:
        for key, value in secret["data"].items():
            if key in {"password", "admin-token", "viewer-token"}:
                assert base64.b64decode(value).decode().startswith("dev-"), key


def test_dev_database_is_postgres_16_on_a_claim_and_the_url_points_at_it() -> None:
    objects = render("overlays/dev")
    database = find(objects, "StatefulSet", "digitlab-db")
    service = find(objects, "Service", "digitlab-db")
    template = database["spec"]["template"]
    (postgres,) = template["spec"]["containers"]
    assert re.fullmatch(r"postgres:16(\.\d+)*-\w+", postgres["image"])
    assert database["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    for probe in ("readinessProbe", "livenessProbe"):
        assert "pg_isready" in " ".join(postgres[probe]["exec"]["command"]), probe
    (claim,) = database["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in postgres["volumeMounts"]}
    pgdata = env_of(postgres)["PGDATA"]["value"]
    assert pgdata.startswith(mounts[claim["metadata"]["name"]] + "/")  # not the root: lost+found
    # The URL the API reads names this Service and the user, password and database it made.
    (secret,) = [
        o
        for o in objects
        if o["kind"] == "Secret" and o["metadata"]["name"].startswith("digitlab-db-app")
    ]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    host = service["metadata"]["name"]
    assert data["uri"] == (
        f"postgresql://{data['username']}:{data['password']}@{host}:5432/{data['dbname']}"
    )


def test_prod_reads_the_secret_cloudnativepg_writes_for_the_example_cluster() -> None:
    path = K8S / "overlays" / "prod" / "cnpg-cluster.example.yaml"
    (cluster,) = yaml.safe_load_all(path.read_text())
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["kind"] == "Cluster"
    kustomization = yaml.safe_load((K8S / "overlays" / "prod" / "kustomization.yaml").read_text())
    # An example to apply first, not a resource: without the operator it would not apply.
    assert path.name not in kustomization["resources"]
    assert cluster["metadata"]["namespace"] == kustomization["namespace"]
    assert cluster["spec"]["imageName"].rsplit(":", 1)[1].startswith("16")
    api = find(render("overlays/prod"), "Deployment", "digitlab-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    ref = env_of(container)["DIGITLAB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (f"{cluster['metadata']['name']}-app", "uri")


def test_retrain_runs_weekly_once_at_a_time_and_starts_suspended() -> None:
    objects = render("base")
    cron = find(objects, "CronJob", "digitlab-retrain")
    assert cron["spec"]["suspend"] is True
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["digitlab", "retrain"]
    assert container["image"].startswith("digitlab-train")
    assert env_of(container)["DIGITLAB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "digitlab-db-app",
        "key": "uri",
    }
    assert "CronJob/digitlab-retrain" in pod_specs(objects)
