"""The Monitor and Runs pages in a real Chromium over a real service: the drift score
rises after a batch of rotated digits, two ticked runs show both curves and their
configs side by side; both pages work from the keyboard and on a phone-width screen."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.data.rotated import DEGREES, rotate
from digitlab.ml.recipes import get_recipe
from digitlab.registry.versions import ModelVersion
from digitlab.store import crud, db, migrate, runs
from digitlab.store.models import Feedback
from tests.api.conftest import b64, png
from tests.web.conftest import screenshot, serve, web_settings


@pytest.fixture(scope="module")
def ops(
    tmp_path_factory: pytest.TempPathFactory, trained_fast_model: ModelVersion
) -> Iterator[tuple[str, Settings, list[int]]]:
    """A service with the session's model and two recorded runs, one of which made it."""
    root = tmp_path_factory.mktemp("web-ops")
    shutil.copytree(trained_fast_model.path.parent, root / "models")
    settings = web_settings(root, root / "models")
    engine = db.make_engine(settings.database_url)
    migrate.upgrade(engine)
    fast = get_recipe("fast").to_dict()
    ids = []
    with db.transaction(engine) as session:
        model_id = crud.register_model(
            session, version=trained_fast_model.version, dataset="mnist",
            onnx_sha256="0" * 64, metrics={}, active=True,
        )  # fmt: skip
        for config, accs, made in [
            (fast, [0.962, 0.981, 0.986], model_id),
            (fast | {"lr": 0.3, "epochs": 4}, [0.951, 0.975, 0.983, 0.988], None),
        ]:
            run_id = runs.create_run(
                session, recipe="fast", dataset="mnist", seed=0, config=config, libraries={}
            )
            for epoch, acc in enumerate(accs, 1):
                row = {"member": 0, "epoch": epoch, "lr": config["lr"],
                       "train_loss": (1 - acc) * 8 / epoch, "train_acc": acc, "val_loss": 0.1,
                       "val_acc": acc, "seconds": 9.0}  # fmt: skip
                runs.add_epoch(session, run_id=run_id, row=row)
            runs.finish_run(
                session, run_id=run_id, status="succeeded", model_id=made,
                metrics={"val_accuracy": accs[-1], "test_accuracy": accs[-1] - 0.002},
            )  # fmt: skip
            ids.append(run_id)
    engine.dispose()
    for url in serve(settings):
        yield url, settings, ids


def send(url: str, images: np.ndarray) -> list[dict[str, object]]:
    out = []
    for start in range(0, len(images), 200):
        body = {"images": [{"image": b64(png(im))} for im in images[start : start + 200]]}
        r = httpx.post(f"{url}/api/v1/predict/batch", json=body, timeout=60)
        assert r.status_code == 200, r.text
        out += r.json()["predictions"]
    return out


def drift_score(page: Page) -> float:
    return float(page.locator("#drift-serving").get_attribute("data-score") or "nan")


def label_some(
    settings: Settings, predictions: list[dict[str, object]], labels: np.ndarray
) -> None:
    """A labeller's labels for these predictions: what the review queue will store."""
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as session:
        for p, label in zip(predictions, labels, strict=True):
            session.add(
                Feedback(prediction_id=p["prediction_id"], label=int(label), source="labeller")
            )
    engine.dispose()


def test_the_drift_score_rises_after_rotated_digits(
    ops: tuple[str, Settings, list[int]], page: Page, mnist_test: Split
) -> None:
    url, settings, _ = ops
    upright = send(url, mnist_test.images[:400])
    label_some(settings, upright[:60], mnist_test.labels[:60])
    page.goto(url + "/monitor?window=hour")
    expect(page.locator("#requests-serving")).to_have_text("400")
    before = drift_score(page)
    assert before < 0.2, "upright test digits look like the test set"

    angles = np.random.default_rng(0).uniform(*DEGREES, size=600)
    turned = send(url, rotate(mnist_test.images[400:1000], angles))
    label_some(settings, turned[:60], mnist_test.labels[400:460])
    page.reload()
    expect(page.locator("#requests-serving")).to_have_text("1000")
    after = drift_score(page)
    assert after > before and after > 0.2, (before, after)
    print(f"drift score: {before:.3f} upright, {after:.3f} after the rotated batch")
    expect(page.locator(".stat.alert")).to_contain_text("the inputs have shifted")
    expect(page.locator("#accuracy-serving")).to_contain_text("%")
    expect(page.locator("#waiting")).to_have_text("880")  # 1000 inputs, 120 labelled
    screenshot(page, "monitor")

    # The window links from the keyboard: Tab reaches them, Enter follows one.
    page.get_by_role("link", name="last week").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(url + "/monitor?window=week")
    expect(page.locator("#requests-serving")).to_have_text("1000")


def test_two_runs_show_both_curves_and_the_config_diff(
    ops: tuple[str, Settings, list[int]], page: Page
) -> None:
    url, _, ids = ops
    page.goto(url + "/runs")
    # From the keyboard: Space ticks each box, Enter on the button compares.
    for run_id in ids:
        page.locator(f"#run-{run_id}").focus()
        page.keyboard.press("Space")
    page.get_by_role("button", name="Compare selected").focus()
    page.keyboard.press("Enter")
    newest_first = ids[::-1]  # the list's order, so the form's
    expect(page).to_have_url(f"{url}/runs?id={newest_first[0]}&id={newest_first[1]}")
    for chart in page.locator("svg.chart").all():
        names = [s.get_attribute("data-series") for s in chart.locator("polyline.series").all()]
        assert names == [f"run {i}" for i in newest_first]
    differing = page.locator("table.configs tr[data-differs]")
    expect(differing).to_have_count(2)
    expect(differing.nth(0)).to_contain_text("epochs")
    expect(differing.nth(1)).to_contain_text("lr")
    screenshot(page, "runs")

    link = page.locator("table.runs a[href^='/models#model-']")
    expect(link).to_have_count(1)
    link.click()
    target = page.url.split("#", 1)[1]
    assert target.startswith("model-")
    expect(page.locator(f"[id='{target}']")).to_be_visible()


@pytest.mark.parametrize("path", ["/monitor", "/runs?id=1&id=2"])
def test_phone_width_has_no_sideways_scrolling(
    ops: tuple[str, Settings, list[int]], page: Page, path: str
) -> None:
    url, _, _ = ops
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(url + path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
