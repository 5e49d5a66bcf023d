"""The upgrade to the robust model as deployed: Compose's upgrade service (after the API
answers, idle afterwards so `up --wait` holds, its recipe chosen by an env variable) and
the Kubernetes upgrade Job (retried until the first model exists), read without Docker or
a cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.compose_file import load_compose
from tests.deploy.kustomize import env_of, find, render


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_compose_upgrades_once_the_api_answers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    upgrade = services["upgrade"]
    assert "profiles" not in upgrade  # `docker compose up` starts it
    assert upgrade["command"][:2] == ["digitlab", "upgrade"]
    assert "--stay" in upgrade["command"]  # an exited service would fail `up --wait`
    assert upgrade["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert upgrade["image"] == services["train"]["image"]  # torch is there, not in serve
    assert upgrade["restart"] == "no"
    env = upgrade["environment"]
    assert env["DIGITLAB_DATABASE_URL"].startswith("postgresql")  # the registry
    assert env["DIGITLAB_UPGRADE_RECIPE"] == "best"
    # The api replicas read the progress the upgrade writes, from the same volume.
    status = env["DIGITLAB_UPGRADE_STATUS_FILE"]
    assert services["api"]["environment"]["DIGITLAB_UPGRADE_STATUS_FILE"] == status
    assert status.startswith("/reports/") and "reports:/reports" in upgrade["volumes"]
    assert services["api"]["volumes"] == ["reports:/reports:ro"]


def test_compose_upgrade_recipe_comes_from_the_environment() -> None:
    upgrade = load_compose({"DIGITLAB_UPGRADE_RECIPE": "plain"})["services"]["upgrade"]
    assert upgrade["environment"]["DIGITLAB_UPGRADE_RECIPE"] == "plain"


@pytest.mark.parametrize("folder", ["base", "overlays/dev", "overlays/prod"])
def test_kubernetes_upgrade_is_a_job_like_the_first_training(folder: str) -> None:
    objects = render(folder)
    job = find(objects, "Job", "digitlab-upgrade")["spec"]
    train = find(objects, "Job", "digitlab-train")["spec"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["command"] == ["digitlab", "upgrade"]
    assert container["image"] == train["template"]["spec"]["containers"][0]["image"]
    # It fails while no model is active: the back-off retries it past the first training.
    assert job["backoffLimit"] >= 5
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    env = env_of(container)
    assert env["DIGITLAB_UPGRADE_RECIPE"]["value"] == "best"
    assert env["DIGITLAB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "uri"
