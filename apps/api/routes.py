"""The API's routes. The prediction routes delegate to `predict.py` (the fast path answers them
first in a running server; these declarations document them in OpenAPI and serve any other mount)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
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
    413: {"model": Detail, "description": "The body exceeds MAX_BODY_BYTES (refused before it is read)"},
    415: {"model": Detail, "description": "The body is not application/json"},
    422: {"model": ValidationFailure,
          "description": "A field is missing, of the wrong type, not a finite float32, or the wrong size"},
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
        return _json(503, {"detail": _not_ready(request), "last_reload_error": last_error})
    meta = model.metadata
    info = ModelInfo(
        version=meta.version, classifier=meta.classifier, backend=model.predictor.backend,
        device=model.predictor.device, providers=list(getattr(model.predictor, "providers", [])),
        features=meta.feature_schema.features, classes=meta.feature_schema.classes,
        metrics={k: float(v) for k, v in meta.metrics.model_dump().items()},
        training_data_hash=meta.training_data_hash, created_at=meta.created_at, loaded_at=model.loaded_at,
        batch_limit=request.app.state.settings.batch_limit, last_reload_error=state.last_error,
        active_version=state.active if state.active != meta.version else None,
    )
    return Response(info.model_dump_json().encode(), media_type="application/json")


def _not_ready(request: Request) -> str:
    """Why no model serves yet: the last refusal, or the family's first model still to come."""
    state = request.app.state.model
    if state.last_error:
        return str(state.last_error.error)
    if state.active is None:
        return (f"no model version promoted yet in {state.registry.uri}: the family's bootstrap Job trains and "
                "promotes its first one (this replica loads it within RELOAD_INTERVAL_S)")
    return "no verified model loaded yet"


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
        return _json(503, {"status": "not ready", "reason": _not_ready(request)})
    return _json(200, {"status": "ready", "model_version": state.current.version})


@router.get("/metrics", response_class=Response, responses={200: {
    "description": "Prometheus text exposition format", "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> Response:
    """Request, latency, error, record and model-reload metrics for Prometheus to scrape."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def sized_openapi(app: Any) -> Callable[[], dict[str, Any]]:
    """OpenAPI that states what the server enforces: the loaded model's feature count and BATCH_LIMIT.

    The base document is generated once; the sizes are filled in per call, from the model
    served now (none before a model loads).
    """
    from fastapi.openapi.utils import get_openapi

    base: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not base:
            base.update(get_openapi(title=app.title, version=app.version, routes=app.routes))
        doc = copy.deepcopy(base)
        state = getattr(app.state, "model", None)
        model = state.current if state is not None else None
        width = {"minItems": model.n_features, "maxItems": model.n_features} if model else {}

        def body(path: str) -> dict[str, Any]:
            return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]

        for path in ("/v1/predict", "/predict-single"):
            body(path)["features"].update(width)
        instances = body("/v1/predict/batch")["instances"]
        instances["maxItems"] = app.state.settings.batch_limit
        instances["items"].update(width)
        return doc

    return openapi


def unhandled(request: Request, exc: Exception) -> JSONResponse:
    route = request.url.path
    request.app.state.metrics.errors.labels(route=route if route in ROUTES else "other", kind="internal").inc()
    log.exception("request_failed", route=route, error=str(exc))
    return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)
