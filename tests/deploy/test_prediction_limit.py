"""The shipped deployments limit anonymous predictions (DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE,
off by default for `digitlab run` and `serve`); the limit itself is tested on a served
process in tests/api/test_hostile_uploads.py."""

from __future__ import annotations

from typing import Any

import pytest

from digitlab.config import Settings
from tests.deploy.compose_file import load_compose
from tests.deploy.kustomize import env_of, find, render

SETTING = "DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE"


def test_off_by_default() -> None:
    assert Settings(_env_file=None).anonymous_predictions_per_minute == 0  # type: ignore[call-arg]


def test_on_in_compose() -> None:
    api = load_compose()["services"]["api"]
    assert int(api["environment"][SETTING]) > 0
    # .env can change it, and 0 turns it off.
    assert int(load_compose({SETTING: "0"})["services"]["api"]["environment"][SETTING]) == 0


@pytest.mark.parametrize("folder", ["base", "overlays/dev", "overlays/prod"])
def test_on_in_kubernetes(folder: str) -> None:
    objects: list[dict[str, Any]] = render(folder)
    pod = find(objects, "Deployment", "digitlab-api")["spec"]["template"]["spec"]
    (api,) = (c for c in pod["containers"] if c["name"] == "api")
    assert int(env_of(api)[SETTING]["value"]) > 0
