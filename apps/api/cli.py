"""`mlops apps serve`: run the inference API in the foreground (what the container runs)."""

from __future__ import annotations

import os
from typing import Any

import typer

from apps.api.settings import Settings, SettingsError
from apps.cli_errors import fail


def serve_command(
    registry: str | None = typer.Option(None, "--registry", help="Registry URI; default MODEL_REGISTRY_URI."),
    host: str | None = typer.Option(None, help="Bind address; default 0.0.0.0."),
    port: int | None = typer.Option(None, help="Port; default PORT or the environment's apps.inference_api.port."),
) -> None:
    """Serve the inference API; every other setting comes from the environment variables (see apps/api/settings.py)."""
    from apps.api.__main__ import serve

    overrides: dict[str, Any] = {k: v for k, v in {"model_registry_uri": registry, "host": host, "port": port}.items()
                                 if v is not None}
    try:
        settings = Settings.from_environ(os.environ, **overrides)
    except SettingsError as e:
        fail(str(e), code=2)
    serve(settings)
