"""Static checks of the Dockerfile and compose.yaml (no Docker engine on this machine)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.deploy.compose_file import ROOT, dockerfile_stages, load_compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "migrate", "train", "api", "proxy", "retrain", "upgrade"}
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["train"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }
    assert services["api"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
        "train": {"condition": "service_completed_successfully"},
    }
    assert services["proxy"]["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_retrain_is_a_one_shot_service_behind_a_profile(compose: dict[str, Any]) -> None:
    retrain = compose["services"]["retrain"]
    assert retrain["profiles"] == ["retrain"]  # `docker compose up` does not start it
    assert retrain["command"] == ["digitlab", "retrain"]
    assert retrain["image"] == compose["services"]["train"]["image"]
    assert "models:/models" in retrain["volumes"]  # the serving version's model.pt
    assert retrain["restart"] == "no"
    assert retrain["environment"]["DIGITLAB_DATABASE_URL"].startswith("postgresql")


def test_database_is_postgres_16_with_a_health_check_and_a_volume(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert re.fullmatch(r"postgres:16(\.\d+)*-\w+", db["image"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert db["environment"]["POSTGRES_PASSWORD"] == "change-me"  # from .env.example
    assert set(compose["volumes"]) == {"pgdata", "models", "mnist", "reports"}


def test_one_shot_services_run_the_right_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["digitlab", "db", "upgrade"]
    assert services["train"]["command"] == ["digitlab", "train", "--if-missing"]
    assert services["train"]["environment"]["DIGITLAB_RECIPE"] == "fast"
    assert "models:/models" in services["train"]["volumes"]
    assert "mnist:/data/mnist" in services["train"]["volumes"]
    for name in ("migrate", "train"):
        assert services[name]["restart"] == "no"


def test_api_takes_models_from_the_database_and_can_scale(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["command"] == ["digitlab", "serve"]
    # No shared models volume: each replica caches the database's models in its own
    # folder; only the upgrade's status file comes from a volume, read-only.
    assert api["volumes"] == ["reports:/reports:ro"]
    assert api["environment"]["DIGITLAB_MODEL_DIR"].startswith("/home/digitlab/")
    assert api["environment"]["DIGITLAB_DATABASE_URL"].startswith("postgresql")
    assert api["restart"] == "unless-stopped"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    # --scale api=3 needs no fixed name and no host port on the replicas.
    for name, service in compose["services"].items():
        assert "container_name" not in service, name
        if name != "proxy":
            assert "ports" not in service, name
    assert compose["services"]["proxy"]["ports"] == ["8000:80"]
    assert compose["services"]["proxy"]["image"].startswith("nginx:1.")


def test_secrets_come_from_env_and_none_is_committed() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_dockerfile_has_a_train_and_a_lean_non_root_serve_stage() -> None:
    stages = dockerfile_stages()
    assert {"serve", "train"} <= set(stages)
    for stage in stages.values():  # each stage starts from the pinned ARG or another stage
        image = stage[0].split()[1]
        assert image == "${PYTHON_IMAGE}" or image in stages, stage[0]
    pinned = re.search(r"ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text())
    assert pinned and re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", pinned.group(1))

    serve = " ".join(stages["serve"] + stages["runtime"])
    assert "USER digitlab" in serve
    assert re.search(r"HEALTHCHECK .*readyz", serve)
    assert "torch" not in serve.lower()
    assert not re.search(r"apt-get install|gcc|build-essential", serve)
    assert "[train]" not in serve

    train = " ".join(stages["train"])
    assert "torch==" in train and "[train]" in train and "USER digitlab" in train


def test_serving_dependencies_carry_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("torch")]
    assert any(d.startswith("torch") for d in project["optional-dependencies"]["train"])


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines  # everything is excluded first, then the few needed paths
    assert {"!pyproject.toml", "!README.md", "!src/"} <= set(lines)
