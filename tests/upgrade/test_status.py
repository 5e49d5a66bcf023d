"""The upgrade's status file and the decision whether to upgrade at all, without training."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digitlab.cli.upgrade_worker import upgrade_needed
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry import versions as registry
from digitlab.registry.upgrade_status import (
    STALE_SECONDS,
    UpgradeStatus,
    describe,
    read_status,
    write_status,
)
from tests.utils.onnx_model import make_model


def test_written_status_reads_back_and_says_where_training_is(tmp_path: Path) -> None:
    path = tmp_path / "var" / "upgrade.json"
    status = UpgradeStatus(
        state="training", recipe="best", serving="v1", epoch=3, epochs=18, seconds_left=125
    )
    write_status(path, status)
    back = read_status(path)
    assert back == status
    assert describe(back) == "training `best`: epoch 3/18, about 2 min 05 s left"
    assert path.stat().st_mode & 0o044 == 0o044  # readable by an API in another container
    assert [p.name for p in path.parent.iterdir()] == ["upgrade.json"]  # no temporary left


def test_a_trainer_gone_silent_is_reported_stopped(tmp_path: Path) -> None:
    status = UpgradeStatus(state="training", recipe="best", serving="v1", epoch=2, epochs=18)
    status.updated_at = (datetime.now(UTC) - timedelta(seconds=STALE_SECONDS + 5)).isoformat()
    assert status.is_stale()
    assert "stopped without a word" in describe(status) and "v1 keeps serving" in describe(status)
    # An upgrade that ended is never stale, however old.
    done = UpgradeStatus(state="failed", recipe="best", serving="v1", reason="why")
    done.updated_at = status.updated_at
    assert not done.is_stale() and describe(done) == "why"


def test_an_unreadable_status_is_no_status(tmp_path: Path) -> None:
    path = tmp_path / "upgrade.json"
    assert read_status(path) is None
    for text in ("{not json", "[1, 2]", json.dumps({"state": "training"})):
        path.write_text(text)
        assert read_status(path) is None, text


def test_the_upgrade_runs_only_until_a_model_of_its_recipe_exists(
    settings: Settings, mnist_train: Split
) -> None:
    assert "no model serves yet" in str(upgrade_needed(settings, "best"))
    first = make_model(settings.model_dir, mnist_train, version="20261127-000000-mnist-linear")
    assert upgrade_needed(settings, "best") is None
    # A `best` model trained before: not again, whether it serves or not.
    best = "20261128-000000-mnist-best"
    make_model(settings.model_dir, mnist_train, version=best)
    card_path = settings.model_dir / best / registry.CARD_FILE
    card = json.loads(card_path.read_text()) | {"recipe": "best", "config": {"dry_run": False}}
    card_path.write_text(json.dumps(card))
    registry.set_current(settings.model_dir, first)
    assert f"trained already ({best})" in str(upgrade_needed(settings, "best"))
    registry.set_current(settings.model_dir, best)
    assert "is a `best` model already" in str(upgrade_needed(settings, "best"))
    # A dry run of the recipe is a smoke test, not the robust model.
    card_path.write_text(json.dumps(card | {"config": {"dry_run": True}}))
    registry.set_current(settings.model_dir, first)
    assert upgrade_needed(settings, "best") is None
