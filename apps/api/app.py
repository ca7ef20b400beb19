"""Assemble the inference API: settings, model state, metrics and routes; the model loads in the lifespan.

    >>> from apps.api.app import create_app
    >>> from apps.api.settings import Settings
    >>> app = create_app(Settings.from_environ(os.environ))  # the ConfigMap's variables   # doctest: +SKIP
    >>> # uvicorn.run(app, port=5000) or `python -m apps.api`
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from apps.api.fastpath import PredictFastPath
from apps.api.limits import RequestGuard
from apps.api.metrics import ApiMetrics, MetricsMiddleware
from apps.api.routes import router, sized_openapi, unhandled
from apps.api.settings import Settings
from apps.api.state import ModelState
from apps.inference import ModelRegistry

log = structlog.get_logger()


def create_app(settings: Settings) -> FastAPI:
    metrics = ApiMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(settings.model_registry_uri, endpoint_url=settings.s3_endpoint_url)
        state = ModelState(registry, runtime=settings.runtime, metrics=metrics, threads=settings.runtime_threads,
                           retry_base_s=settings.reload_interval_s, contract=settings.model_contract)
        app.state.model = state
        if settings.faults_active:
            log.warning("fault_injection_active", latency_ms=settings.fault_latency_ms,
                        error_ratio=settings.fault_error_ratio)
        await state.refresh()  # not ready (503 on /readyz) until a verified model loads; the poller retries
        poller = asyncio.create_task(state.poll(settings.reload_interval_s), name="model-reload")
        log.info("api_started", registry=settings.model_registry_uri, model_version=state.current and state.current.version,
                 batch_limit=settings.batch_limit, reload_interval_s=settings.reload_interval_s)
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    app = FastAPI(title="ML inference API", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.include_router(router)
    app.add_exception_handler(Exception, unhandled)
    app.openapi = sized_openapi(app)  # type: ignore[method-assign]
    # Starlette wraps the last added outermost: the guard sees every request before the fast path
    # reads a body, and metrics see (and count) what the guard refuses.
    app.add_middleware(PredictFastPath)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
