"""History says which model versions were trained with a row's correction, and only
where that was recorded (`training_feedback`); SQLite and PostgreSQL, through TestClient."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.store import crud, db, lineage
from digitlab.store.models import Feedback
from tests.api.conftest import SECOND, b64, png


def test_history_marks_corrections_used_in_training(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    made = []
    for k in range(3):
        r = client.post("/api/v1/predict", json={"image": b64(png(mnist_test.images[k]))})
        assert r.status_code == 200, r.text
        made.append(r.json()["prediction_id"])
    for pid in made[:2]:
        r = client.post(f"/api/v1/predictions/{pid}/feedback", json={"label": 3})
        assert r.status_code == 201, r.text
    page = client.get("/history")
    assert page.status_code == 200 and "trained into" not in page.text

    engine = db.make_engine(settings_api.database_url)
    with db.transaction(engine) as s:
        feedback_id = s.scalars(select(Feedback.id).where(Feedback.prediction_id == made[0])).one()
        retrained = crud.register_model(
            s, version="20261128-000000-retrained", dataset="mnist", onnx_sha256="0" * 64,
            metrics={}, active=False,
        )  # fmt: skip
        lineage.record_training_feedback(s, model_id=retrained, feedback_ids=[feedback_id])
    engine.dispose()

    page = client.get("/history")
    assert page.status_code == 200
    assert page.text.count("trained into") == 1
    assert "trained into <code>20261128-000000-retrained</code>" in page.text
    # The badge sits in the row of the corrected prediction, not in the others.
    row = page.text.split(f"<td>{made[0]}</td>", 1)[1].split("</tr>", 1)[0]
    assert "20261128-000000-retrained" in row
    assert SECOND in row  # the version that made the prediction is still shown
