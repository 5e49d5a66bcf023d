"""Request and response bodies; their field descriptions become the OpenAPI text."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from digitlab.api.params import PlainText, json_integer

MAX_BATCH = 256
MAX_NOTE = 2000
# A label is a JSON integer 0..9: `true` or `"1"` is refused, not read as 1.
Label = Annotated[int, Field(ge=0, le=9), BeforeValidator(json_integer)]


class ImageIn(BaseModel):
    image: str = Field(
        description="The image file (PNG, JPEG, ...), base64; a `data:` URL prefix is allowed",
        # What JSON Schema can say of it; the tests' fuzzer draws real images for it.
        # minLength: an empty one is refused after decoding, as "the image is empty".
        json_schema_extra={
            "minLength": 1,
            "format": "byte",
            "contentEncoding": "base64",
            "contentMediaType": "image/*",
        },
    )
    true_label: Label | None = Field(None, description="The right answer 0..9, if known")


class BatchIn(BaseModel):
    images: list[ImageIn] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} images"
    )


class PredictOut(BaseModel):
    prediction: int = Field(description="The predicted digit")
    confidence: float = Field(description="Its probability")
    probabilities: list[float] = Field(description="The ten class probabilities, 0..9")
    is_digit: bool = Field(
        description="The model's verdict that the picture shows one handwritten digit;"
        " false: it does not look like a digit, and `prediction` is only the nearest one"
    )
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
    is_digit: bool | None = Field(
        description="The model's verdict that the picture shows a digit; null for a"
        " prediction stored before there was one"
    )
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
    label: Label = Field(description="The right answer, a digit 0..9")
    note: PlainText | None = Field(
        None, max_length=MAX_NOTE, description="Free text; no control characters"
    )

    model_config = {
        "json_schema_extra": {"examples": [{"label": 7, "note": "the stroke is a seven"}]}
    }


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
