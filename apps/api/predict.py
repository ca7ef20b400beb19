"""The prediction core: raw JSON body in, (status, JSON bytes) out, with no HTTP framework in sight.

Both the FastAPI routes (for OpenAPI and any caller of the router) and the fast path
(`fastpath.py`, which answers the hot routes before FastAPI's routing and dependency
machinery) call these, so the behaviour is one piece of code. Pydantic parses and validates
the body in one pass; ONNX Runtime runs inline for small inputs: a thread hop costs more
than a single-record prediction.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import anyio
import numpy as np
from pydantic import ValidationError

from apps.api.schemas import BatchRequest, PredictRequest
from apps.api.state import LoadedModel

# Above this many records a batch runs in a worker thread so the loop keeps serving single records.
INLINE_BATCH_MAX = 32
PREDICT_ROUTES = frozenset({"/v1/predict", "/predict-single", "/v1/predict/batch"})

Reply = tuple[int, bytes]


def _json(status: int, body: Any) -> Reply:
    return status, json.dumps(body, separators=(",", ":")).encode()


def _invalid(app_state: Any, route: str, errors: list[dict[str, Any]]) -> Reply:
    app_state.metrics.errors.labels(route=route, kind="validation").inc()
    return _json(422, {"detail": errors})


def _field_error(loc: list[str | int], msg: str, type_: str) -> list[dict[str, Any]]:
    return [{"loc": ["body", *loc], "msg": msg, "type": type_}]


def _pydantic_errors(e: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in e.errors(include_url=False, include_input=False)]


async def _preflight(app_state: Any, route: str) -> LoadedModel | Reply:
    """The served model, or the reply to send instead (injected fault, no model yet)."""
    settings = app_state.settings
    if settings.faults_active:
        if settings.fault_latency_ms:
            await asyncio.sleep(settings.fault_latency_ms / 1000)
        if settings.fault_error_ratio and random.random() < settings.fault_error_ratio:  # noqa: S311
            app_state.metrics.errors.labels(route=route, kind="injected").inc()
            return _json(500, {"detail": f"injected fault (FAULT_ERROR_RATIO={settings.fault_error_ratio:g})"})
    model = app_state.model.current  # one read: this request uses this model to the end, whatever swaps
    if model is None:
        app_state.metrics.errors.labels(route=route, kind="unavailable").inc()
        return _json(503, {"detail": "no verified model loaded yet; see /v1/model and /readyz"})
    return model


async def predict_one(app_state: Any, route: str, body: bytes, *, legacy: bool) -> Reply:
    model = await _preflight(app_state, route)
    if isinstance(model, tuple):
        return model
    try:
        features = PredictRequest.model_validate_json(body).features
    except ValidationError as e:
        return _invalid(app_state, route, _pydantic_errors(e))
    if len(features) != model.n_features:
        return _invalid(app_state, route, _field_error(
            ["features"], f"expected {model.n_features} features (the model's schema), got {len(features)}",
            "feature_count"))
    proba = model.predictor.predict_proba(np.array((features,), dtype=np.float32))[0]
    app_state.metrics.records.inc()
    return _json(200, {"prediction" if legacy else "label": int(model.classes[proba.argmax()]),
                       "probabilities": [round(float(p), 6) for p in proba], "model_version": model.version})


async def predict_many(app_state: Any, route: str, body: bytes) -> Reply:
    model = await _preflight(app_state, route)
    if isinstance(model, tuple):
        return model
    try:
        instances = BatchRequest.model_validate_json(body).instances
    except ValidationError as e:
        return _invalid(app_state, route, _pydantic_errors(e))
    limit = app_state.settings.batch_limit
    if len(instances) > limit:
        return _invalid(app_state, route, _field_error(
            ["instances"], f"expected at most {limit} records (BATCH_LIMIT), got {len(instances)}; split the batch",
            "too_long"))
    for i, row in enumerate(instances):
        if len(row) != model.n_features:
            return _invalid(app_state, route, _field_error(
                ["instances", i], f"expected {model.n_features} features (the model's schema), got {len(row)}",
                "feature_count"))
    X = np.array(instances, dtype=np.float32)
    if len(X) > INLINE_BATCH_MAX:
        proba = await anyio.to_thread.run_sync(model.predictor.predict_proba, X)
    else:
        proba = model.predictor.predict_proba(X)
    app_state.metrics.records.inc(len(X))
    return _json(200, {"labels": model.classes[proba.argmax(axis=1)].tolist(),
                       "probabilities": np.round(proba.astype(np.float64), 6).tolist(),
                       "model_version": model.version})


async def dispatch(app_state: Any, route: str, body: bytes) -> Reply:
    if route == "/v1/predict/batch":
        return await predict_many(app_state, route, body)
    return await predict_one(app_state, route, body, legacy=route == "/predict-single")
