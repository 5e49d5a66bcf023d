"""Request and response bodies; their field descriptions become the OpenAPI text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt

MAX_BATCH = 256

Digit = Field(ge=0, le=9, description="A digit 0..9")


class ImageIn(BaseModel):
    image: str = Field(description="The image file, base64 (a data: URL prefix is allowed)")
    true_label: int | None = Field(None, ge=0, le=9, description="The right answer, if known")


class BatchIn(BaseModel):
    images: list[ImageIn] = Field(description=f"1 to {MAX_BATCH} images")


class PredictOut(BaseModel):
    prediction: int = Field(description="The predicted digit")
    confidence: float = Field(description="Its probability")
    probabilities: list[float] = Field(description="The ten class probabilities, 0..9")
    input_data_id: int
    prediction_id: int
    model_version: str
    latency_ms: float = Field(description="Time spent in the service for this request")
    image_url: str = Field(
        description="The 28x28 image the model saw; with a viewer token set it carries a"
        " key that opens this one image without the token"
    )


class BatchOut(BaseModel):
    model_version: str
    predictions: list[PredictOut]
    latency_ms: float


class PredictionOut(BaseModel):
    id: int
    input_id: int
    model_version: str
    label: int
    confidence: float
    probabilities: list[float]
    true_label: int | None
    source: str
    latency_ms: float
    created_at: datetime
    image_url: str


class PredictionPage(BaseModel):
    items: list[PredictionOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Pass as offset for the next page; null: last")


class FeedbackIn(BaseModel):
    label: StrictInt = Digit  # strict: true or "3" is not a digit
    note: str | None = Field(None, max_length=2000)


class FeedbackOut(BaseModel):
    id: int
    prediction_id: int
    label: int


class ModelOut(BaseModel):
    version: str
    dataset: str
    recipe: str | None
    created_at: str | None
    metrics: dict[str, Any]
    current: bool = Field(description="The registry's default version")
    serving: bool = Field(description="The version this process answers with")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
