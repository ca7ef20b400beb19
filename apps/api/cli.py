"""`mlops apps serve`: run the inference API in the foreground (what the container runs)."""

from __future__ import annotations

import os
from typing import Any

import typer

from apps.api.settings import Settings, SettingsError
from apps.cli_errors import fail


def serve_command(
    env_name: str = typer.Option("local", "--env", help="Environment whose ConfigMap gives the settings not set below "
                                 "or in the process environment."),
    registry: str | None = typer.Option(None, "--registry", help="Registry URI; default MODEL_REGISTRY_URI."),
    host: str | None = typer.Option(None, help="Bind address; default 0.0.0.0."),
    port: int | None = typer.Option(None, help="Port; default PORT or the environment's apps.inference_api.port."),
) -> None:
    """Serve the inference API with the settings its Deployment in ENV would get; the process
    environment's variables (see apps/api/settings.py) and the options above win."""
    from apps.api import workload
    from apps.api.__main__ import serve
    from environments import EnvironmentFileError, load_environment

    overrides: dict[str, Any] = {k: v for k, v in {"model_registry_uri": registry, "host": host, "port": port}.items()
                                 if v is not None}
    try:
        settings = Settings.from_environ({**workload.config(load_environment(env_name)), **os.environ}, **overrides)
    except (SettingsError, EnvironmentFileError) as e:
        fail(str(e), code=2)
    serve(settings)
