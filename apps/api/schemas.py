"""Request and response bodies of the inference API.

Features are strict finite float32 numbers: a string, a boolean, NaN, infinity or a value
beyond float32's range is a 422 naming the field. The feature count is the loaded model's schema, checked per request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FLOAT32_MAX = 3.4028234663852886e38
# Finite after the cast to float32 too: 1e39 would silently become inf.
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]


class PredictRequest(BaseModel):
    """One record: `{"features": [x0, x1, ...]}` (also the seed's /predict-single body)."""

    model_config = ConfigDict(extra="forbid")
    features: list[Feature] = Field(min_length=1)


class BatchRequest(BaseModel):
    """Several records: `{"instances": [[x0, ...], [x0, ...]]}`, at most BATCH_LIMIT of them."""

    model_config = ConfigDict(extra="forbid")
    instances: list[list[Feature]] = Field(min_length=1)


class Prediction(BaseModel):
    label: int
    probabilities: list[float]
    model_version: str


class LegacyPrediction(BaseModel):
    prediction: int
    probabilities: list[float]
    model_version: str


class BatchPrediction(BaseModel):
    labels: list[int]
    probabilities: list[list[float]]
    model_version: str


class ReloadError(BaseModel):
    version: str | None
    error: str
    at: datetime
    # Consecutive failed loads of this version, and when the next try is due (backoff).
    attempts: int = 1
    next_retry_at: datetime | None = None


class ModelInfo(BaseModel):
    version: str
    classifier: str
    backend: str
    device: str
    providers: list[str]
    features: list[str]
    classes: list[int]
    metrics: dict[str, float]
    training_data_hash: str
    created_at: datetime
    loaded_at: datetime
    batch_limit: int
    last_reload_error: ReloadError | None
    # Set while this replica serves a previous verified version because the active one fails to load.
    active_version: str | None = None


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationFailure(BaseModel):
    detail: list[ErrorItem]


class Detail(BaseModel):
    detail: str
