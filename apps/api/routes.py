"""The API's routes. Prediction handlers parse the raw body with pydantic in one pass and run
ONNX Runtime inline for small inputs: a thread hop costs more than a single-record prediction."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import anyio
import numpy as np
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from apps.api.metrics import ROUTES
from apps.api.schemas import (
    BatchPrediction,
    BatchRequest,
    Detail,
    LegacyPrediction,
    ModelInfo,
    Prediction,
    PredictRequest,
    ValidationFailure,
)
from apps.api.state import LoadedModel

router = APIRouter()
log = structlog.get_logger()

# Above this many records a batch runs in a worker thread so the loop keeps serving single records.
INLINE_BATCH_MAX = 32

_PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationFailure, "description": "A field is missing, of the wrong type, NaN, or the wrong size"},
    503: {"model": Detail, "description": "No verified model loaded yet"},
}


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json")


def _invalid(route: str, request: Request, errors: list[dict[str, Any]]) -> Response:
    request.app.state.metrics.errors.labels(route=route, kind="validation").inc()
    return _json(422, {"detail": errors})


def _field_error(loc: list[str | int], msg: str, type_: str) -> list[dict[str, Any]]:
    return [{"loc": ["body", *loc], "msg": msg, "type": type_}]


def _pydantic_errors(e: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in e.errors(include_url=False, include_input=False)]


async def _preflight(route: str, request: Request) -> LoadedModel | Response:
    """The served model, or the response to send instead (no model yet, injected fault)."""
    app_state = request.app.state
    settings = app_state.settings
    if settings.faults_active:
        if settings.fault_latency_ms:
            await asyncio.sleep(settings.fault_latency_ms / 1000)
        if settings.fault_error_ratio and random.random() < settings.fault_error_ratio:  # noqa: S311
            app_state.metrics.errors.labels(route=route, kind="injected").inc()
            return _json(500, {"detail": f"injected fault (FAULT_ERROR_RATIO={settings.fault_error_ratio:g})"})
    model = app_state.model.current
    if model is None:
        app_state.metrics.errors.labels(route=route, kind="unavailable").inc()
        return _json(503, {"detail": "no verified model loaded yet; see /v1/model and /readyz"})
    return model


def _one(model: LoadedModel, features: list[float]) -> tuple[int, list[float]]:
    proba = model.predictor.predict_proba(np.array((features,), dtype=np.float32))[0]
    return int(model.classes[proba.argmax()]), [round(float(p), 6) for p in proba]


async def _single(route: str, request: Request, legacy: bool) -> Response:
    model = await _preflight(route, request)
    if isinstance(model, Response):
        return model
    try:
        body = PredictRequest.model_validate_json(await request.body())
    except ValidationError as e:
        return _invalid(route, request, _pydantic_errors(e))
    if len(body.features) != model.n_features:
        return _invalid(route, request, _field_error(
            ["features"], f"expected {model.n_features} features (the model's schema), got {len(body.features)}",
            "feature_count"))
    label, probabilities = _one(model, body.features)
    request.app.state.metrics.records.inc()
    key = "prediction" if legacy else "label"
    return _json(200, {key: label, "probabilities": probabilities, "model_version": model.version})


@router.post("/v1/predict", response_model=Prediction, responses=_PREDICT_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": PredictRequest.model_json_schema()}}}})
async def predict(request: Request) -> Response:
    """Predict one record."""
    return await _single("/v1/predict", request, legacy=False)


@router.post("/predict-single", response_model=LegacyPrediction, responses=_PREDICT_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": PredictRequest.model_json_schema()}}}})
async def predict_single(request: Request) -> Response:
    """The inference seed's route: `{"features": [20 numbers]}`."""
    return await _single("/predict-single", request, legacy=True)


@router.post("/v1/predict/batch", response_model=BatchPrediction, responses=_PREDICT_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": BatchRequest.model_json_schema()}}}})
async def predict_batch(request: Request) -> Response:
    """Predict up to BATCH_LIMIT records at once."""
    route = "/v1/predict/batch"
    model = await _preflight(route, request)
    if isinstance(model, Response):
        return model
    try:
        body = BatchRequest.model_validate_json(await request.body())
    except ValidationError as e:
        return _invalid(route, request, _pydantic_errors(e))
    limit = request.app.state.settings.batch_limit
    if len(body.instances) > limit:
        return _invalid(route, request, _field_error(
            ["instances"], f"expected at most {limit} records (BATCH_LIMIT), got {len(body.instances)}; split the batch",
            "too_long"))
    for i, row in enumerate(body.instances):
        if len(row) != model.n_features:
            return _invalid(route, request, _field_error(
                ["instances", i], f"expected {model.n_features} features (the model's schema), got {len(row)}",
                "feature_count"))
    X = np.array(body.instances, dtype=np.float32)
    if len(X) > INLINE_BATCH_MAX:
        proba = await anyio.to_thread.run_sync(model.predictor.predict_proba, X)
    else:
        proba = model.predictor.predict_proba(X)
    request.app.state.metrics.records.inc(len(X))
    return _json(200, {"labels": model.classes[proba.argmax(axis=1)].tolist(),
                       "probabilities": np.round(proba.astype(np.float64), 6).tolist(),
                       "model_version": model.version})


@router.get("/v1/model", response_model=ModelInfo, responses={503: {"model": Detail}})
async def model_info(request: Request) -> Response:
    """The served version, its schema, metrics and runtime, and the last refused reload if any."""
    state = request.app.state.model
    model = state.current
    last_error = state.last_error.model_dump(mode="json") if state.last_error else None
    if model is None:
        return _json(503, {"detail": "no verified model loaded yet", "last_reload_error": last_error})
    meta = model.metadata
    info = ModelInfo(
        version=meta.version, classifier=meta.classifier, backend=model.predictor.backend,
        device=model.predictor.device, providers=list(getattr(model.predictor, "providers", [])),
        features=meta.feature_schema.features, classes=meta.feature_schema.classes,
        metrics={k: float(v) for k, v in meta.metrics.model_dump().items()},
        training_data_hash=meta.training_data_hash, created_at=meta.created_at, loaded_at=model.loaded_at,
        batch_limit=request.app.state.settings.batch_limit, last_reload_error=state.last_error,
    )
    return Response(info.model_dump_json().encode(), media_type="application/json")


@router.get("/health")
async def health(request: Request) -> Response:
    """The seed's health route: the process is up (it says whether a model is loaded)."""
    model = request.app.state.model.current
    return _json(200, {"status": "healthy", "model_loaded": model is not None,
                       "model_version": model.version if model else None})


@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the event loop answers."""
    return _json(200, {"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Readiness: only once a verified model is loaded."""
    state = request.app.state.model
    if state.current is None:
        reason = state.last_error.error if state.last_error else "no model loaded yet"
        return _json(503, {"status": "not ready", "reason": reason})
    return _json(200, {"status": "ready", "model_version": state.current.version})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def unhandled(request: Request, exc: Exception) -> JSONResponse:
    route = request.url.path
    request.app.state.metrics.errors.labels(route=route if route in ROUTES else "other", kind="internal").inc()
    log.exception("request_failed", route=route, error=str(exc))
    return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)
