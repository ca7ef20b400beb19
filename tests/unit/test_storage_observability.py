"""Structured logs and the background metrics server every worker runs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog
from prometheus_client import CollectorRegistry, Counter

from apps.observability import configure_logging, serve_metrics



@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging sets process-wide state: put it back so other tests see their own."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate)
               for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    yield
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level
    for name, (h, propagate) in uvicorn.items():
        logging.getLogger(name).handlers[:] = h
        logging.getLogger(name).propagate = propagate


def test_logs_are_one_json_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test", "INFO")
    structlog.get_logger().info("model_loaded", version="v1")
    structlog.get_logger().debug("hidden")
    logging.getLogger("uvicorn.error").warning("from the stdlib")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["level"], e["service"]) for e in lines] == [
        ("model_loaded", "info", "unit-test"),
        ("from the stdlib", "warning", "unit-test"),
    ]
    assert lines[0]["version"] == "v1" and lines[0]["timestamp"].endswith("Z")


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        configure_logging("unit-test", "LOUD")


def test_metrics_server_serves_metrics_and_health() -> None:
    registry = CollectorRegistry()
    Counter("records_processed", "records", registry=registry).inc(3)
    healthy, ready = {"ok": True}, {"ok": True}
    with serve_metrics(0, host="127.0.0.1", registry=registry, healthy=lambda: healthy["ok"],
                       ready=lambda: ready["ok"]) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert "records_processed_total 3.0" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/healthz").status_code == httpx.get(f"{base}/readyz").status_code == 200
        ready["ok"] = False  # e.g. shutting down: no longer ready, still alive
        assert (httpx.get(f"{base}/readyz").status_code, httpx.get(f"{base}/healthz").status_code) == (503, 200)
        healthy["ok"] = False
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/other").status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)
