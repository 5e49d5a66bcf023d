"""A Python client generated from the served /openapi.json (openapi-python-client) works
end to end: predict (JSON and multipart), feedback, the listings, one prediction, and
the errors parse as the schema's ErrorBody. A schema that lied would break it here."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import ADMIN_TOKEN, VIEWER_TOKEN, b64, png, ready_settings
from tests.utils.served import Served, serving

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer, linear_models: Path
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("client-service")
    url = pg_server.create_database(f"client_{uuid.uuid4().hex[:8]}")
    tokens = {"DIGITLAB_VIEWER_TOKEN": VIEWER_TOKEN, "DIGITLAB_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving(ready_settings(folder, url, linear_models), folder, **tokens) as service:
        yield service


@pytest.fixture(scope="module")
def generated(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The package `digitlab_client`, generated from what the service serves."""
    root = tmp_path_factory.mktemp("generated")
    schema = root / "openapi.json"
    schema.write_bytes(httpx.get(f"{served.url}/openapi.json").content)
    out = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(schema), "--meta", "none",
         "--output-path", str(root / "digitlab_client")],
        capture_output=True, text=True, cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    # The one warning allowed: the image/png answer, which the generator does not model.
    warnings = [line for line in out.stdout.splitlines() if line.startswith("WARNING")]
    assert all("image.png" in line for line in warnings), out.stdout
    # openapi-python-client 0.29 types a body with two media types `... | Unset` without
    # importing Unset (its ruff post-hook does not add imports either): add it.
    for path in (root / "digitlab_client" / "api").rglob("*.py"):
        code = path.read_text()
        if "| Unset" in code and "Unset\n" not in code and ", Unset" not in code:
            path.write_text(
                code.replace("import Response, UNSET\n", "import Response, UNSET, Unset\n")
            )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("digitlab_client")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("digitlab_client")]:
            del sys.modules[name]


def module(package: Any, name: str) -> ModuleType:
    return importlib.import_module(f"digitlab_client.{name}")


def test_the_generated_client_end_to_end(generated: Any, served: Served, mnist_test: Split) -> None:
    models = module(generated, "models")
    types = module(generated, "types")
    predict = module(generated, "api.predict.predict")
    batch = module(generated, "api.predict.predict_batch")
    feedback = module(generated, "api.predictions.feedback")
    listing = module(generated, "api.predictions.list_predictions")
    one = module(generated, "api.predictions.get_prediction")
    list_models = module(generated, "api.models.list_models")

    anonymous = generated.Client(base_url=served.url)
    viewer = generated.AuthenticatedClient(base_url=served.url, token=VIEWER_TOKEN)

    image = png(mnist_test.images[0])
    first = predict.sync(client=anonymous, body=models.PredictJsonImageIn(image=b64(image)))
    assert isinstance(first, models.PredictOut) and 0 <= first.prediction <= 9
    upload = types.File(payload=io.BytesIO(image), file_name="seven.png", mime_type="image/png")
    second = predict.sync(client=anonymous, body=models.PredictFilesBody(file=upload, true_label=7))
    assert isinstance(second, models.PredictOut), second
    items = [models.PredictBatchJsonBodyImageIn(image=b64(png(mnist_test.images[k])))
             for k in range(3)]  # fmt: skip
    many = batch.sync(client=anonymous, body=models.PredictBatchJsonBody(images=items))
    assert isinstance(many, models.BatchOut) and len(many.predictions) == 3

    made = feedback.sync(
        first.prediction_id, client=anonymous, body=models.FeedbackIn(label=7, note="a seven")
    )
    assert isinstance(made, models.FeedbackOut) and made.label == 7

    page = listing.sync(client=viewer, limit=2)
    assert isinstance(page, models.PredictionPage) and len(page.items) == 2
    assert page.next_offset == 2
    rest = listing.sync(client=viewer, limit=10, offset=page.next_offset)
    assert isinstance(rest, models.PredictionPage) and len(rest.items) == 3
    found = one.sync(first.prediction_id, client=viewer)
    assert isinstance(found, models.PredictionOut) and found.true_label == 7
    assert [m.version for m in list_models.sync(client=anonymous)]

    # The errors come back as the schema's ErrorBody, whatever the status.
    missing = one.sync(2**63 - 1, client=viewer)
    assert isinstance(missing, models.ErrorBody) and "no prediction" in missing.detail
    refused = listing.sync(client=generated.AuthenticatedClient(base_url=served.url, token="x"))
    assert isinstance(refused, models.ErrorBody) and "viewer token" in refused.detail
    bad = feedback.sync(first.prediction_id, client=anonymous, body=models.FeedbackIn(label=11))
    assert isinstance(bad, models.ErrorBody) and "label" in bad.detail
