"""The baseline that bench/serve.py runs beside the service: the straightforward design
of the reference API, built from this project's own parts so that only the design
differs. Each request runs in the thread pool (a plain `def` route), is scored alone,
and is stored in its own ORM transaction: INSERT the input, INSERT the prediction,
COMMIT. The service instead decodes on the event loop, scores concurrent requests
together, and stores each group in one statement.

    uvicorn --factory naive_app:app   # with bench/ on PYTHONPATH, settings from the env
"""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import Body, FastAPI

from digitlab.config import get_settings
from digitlab.inference.preprocess import image_to_digit
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from digitlab.registry.publish import ensure_model
from digitlab.store import crud, db


def app() -> FastAPI:
    settings = get_settings()
    engine = db.make_engine(settings.database_url)
    model = registry.resolve(settings.model_dir)
    classifier = OnnxClassifier(model, threads=1)
    model_id = ensure_model(engine, model, active=True)
    service = FastAPI()

    @service.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    @service.post("/api/v1/predict")
    def predict(image: str = Body(embed=True)) -> dict[str, Any]:
        start = time.perf_counter()
        digit = image_to_digit(base64.b64decode(image))
        probs = classifier.probabilities(digit[None])[0]
        with db.transaction(engine) as session:
            input_id = crud.record_input(session, image=digit, source="api:json")
            prediction_id = crud.record_prediction(
                session,
                input_id=input_id,
                model_id=model_id,
                probabilities=probs,
                latency_ms=(time.perf_counter() - start) * 1000,
            )
        return {
            "prediction": int(probs.argmax()),
            "confidence": float(probs.max()),
            "probabilities": probs.tolist(),
            "input_data_id": input_id,
            "prediction_id": prediction_id,
        }

    return service
