"""The API's routes. The prediction routes delegate to `predict.py` (the fast path answers them
first in a running server; these declarations document them in OpenAPI and serve any other mount)."""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from apps.api.metrics import ROUTES
from apps.api.predict import dispatch
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

router = APIRouter()
log = structlog.get_logger()

_PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationFailure, "description": "A field is missing, of the wrong type, NaN, or the wrong size"},
    503: {"model": Detail, "description": "No verified model loaded yet"},
}


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json")


async def _reply(request: Request, route: str) -> Response:
    status, payload = await dispatch(request.app.state, route, await request.body())
    return Response(payload, status_code=status, media_type="application/json")


@router.post("/v1/predict", response_model=Prediction, responses=_PREDICT_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": PredictRequest.model_json_schema()}}}})
async def predict(request: Request) -> Response:
    """Predict one record."""
    return await _reply(request, "/v1/predict")


@router.post("/predict-single", response_model=LegacyPrediction, responses=_PREDICT_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": PredictRequest.model_json_schema()}}}})
async def predict_single(request: Request) -> Response:
    """The inference seed's route: `{"features": [20 numbers]}`."""
    return await _reply(request, "/predict-single")


@router.post("/v1/predict/batch", response_model=BatchPrediction, responses=_PREDICT_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": BatchRequest.model_json_schema()}}}})
async def predict_batch(request: Request) -> Response:
    """Predict up to BATCH_LIMIT records at once."""
    return await _reply(request, "/v1/predict/batch")


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
