"""Prometheus metrics of the API, in a registry of its own (one per app instance)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import ProcessCollector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

ROUTES = frozenset({"/health", "/predict-single", "/v1/predict", "/v1/predict/batch", "/v1/model", "/healthz",
                    "/readyz", "/metrics"})
# Sub-millisecond resolution where single predictions live, up to the batch gates' seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter("inference_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("inference_request_duration_seconds", "Request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("inference_errors", "Failed requests by route and kind (validation, unavailable, "
                              "internal, injected)", ["route", "kind"], registry=r)
        self.records = Counter("inference_predicted_records", "Records predicted", registry=r)
        self.model_info = Gauge("inference_model_info", "The served model version (value 1)",
                                ["version", "backend", "device"], registry=r)
        self.reload_failures = Gauge("inference_model_reload_failures", "Consecutive failed loads of the active "
                                     "version (0 once it serves); retried with backoff", registry=r)
        self.reloads = Counter("inference_model_reloads", "Model loads by outcome (loaded, refused)", ["outcome"],
                               registry=r)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def model_loaded(self, version: str, backend: str, device: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version, backend=backend, device=device).set(1)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # resolve label children once: labels() takes a lock and hashes every time
            children = (self.requests.labels(route=route, method=method, status=str(status)),
                        self.latency.labels(route=route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """A plain ASGI middleware (no BaseHTTPMiddleware task hop): counts and times every request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = scope["path"]
            self.metrics.observe(path if path in ROUTES else "other", scope["method"], status,
                                 time.perf_counter() - start)
