"""Structured JSON logs and a Prometheus endpoint for every long-running app.

    >>> configure_logging("batch", "INFO")
    >>> log = structlog.get_logger()
    >>> with serve_metrics(0) as server:   # 0: any free port; workers pass METRICS_PORT
    ...     log.info("started", metrics_port=server.port)
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def configure_logging(service: str, level: str = "INFO") -> None:
    """One JSON object per line on stdout, with timestamp, level, service and the event's fields.

    The standard library's loggers (uvicorn, botocore) are routed through the same renderer,
    so a container's output is uniformly machine-readable.
    """
    name = level.upper()
    if name not in _LEVELS:
        raise ValueError(f"LOG_LEVEL: expected one of {sorted(_LEVELS)}, got {level!r}")
    numeric = logging.getLevelName(name)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No file given: each logger writes to the sys.stdout of its time (tests swap it).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    # uvicorn installs its own handlers; hand its records to the root JSON handler instead.
    for name_ in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name_)
        lg.handlers[:] = []
        lg.propagate = True


def _add_service(service: str) -> Callable[..., dict]:
    def processor(_logger: object, _method: str, event: dict) -> dict:
        event.setdefault("service", service)
        event.pop("color_message", None)  # uvicorn's ANSI-coloured duplicate of the message
        return event

    return processor


class MetricsServer:
    """A background HTTP server: GET /metrics (Prometheus text), /healthz (liveness: the process
    answers) and /readyz (readiness: the worker says it is working, e.g. not shutting down)."""

    def __init__(self, port: int, *, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY,
                 healthy: Callable[[], bool] = lambda: True, ready: Callable[[], bool] = lambda: True) -> None:
        registry_ = registry
        healthy_ = healthy
        ready_ = ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry_), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = healthy_()
                    self._send(200 if ok else 503, b'{"status":"ok"}' if ok else b'{"status":"unhealthy"}',
                               "application/json")
                elif path == "/readyz":
                    ok = ready_()
                    self._send(200 if ok else 503, b'{"status":"ready"}' if ok else b'{"status":"not ready"}',
                               "application/json")
                else:
                    self._send(404, b'{"detail":"not found; try /metrics, /healthz or /readyz"}', "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # scrapes every few seconds would drown the JSON logs

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"metrics:{port}", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self if self._thread.is_alive() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_metrics(port: int, *, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY,
                  healthy: Callable[[], bool] = lambda: True, ready: Callable[[], bool] = lambda: True) -> MetricsServer:
    """Start /metrics, /healthz and /readyz on `port` in a daemon thread; also usable as a context manager.

    Workers call it once at start-up (`serve_metrics(settings.metrics_port)`); tests use
    `with serve_metrics(0) as s:` and read `s.port`.
    """
    return MetricsServer(port, host=host, registry=registry, healthy=healthy, ready=ready).start()

