"""`python -m apps.api`: serve the inference API on PORT with settings from the environment."""

from __future__ import annotations

import os
import sys

from apps.api.settings import Settings, SettingsError


def serve(settings: Settings) -> None:
    import resource

    import uvicorn

    from apps.api.app import create_app
    from apps.api.limits import server_protocol
    from apps.observability import configure_logging

    configure_logging("inference-api", settings.log_level)
    # Every descriptor the container allows: connections beyond MAX_CONNECTIONS get a 503, not EMFILE.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # One worker per container: Kubernetes scales replicas; access logs off (the metrics count requests).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, workers=1, access_log=False,
                log_config=None, timeout_graceful_shutdown=10, server_header=False,
                http=server_protocol(settings.header_timeout_s), limit_concurrency=settings.max_connections,
                # uvicorn annotates int but hands the value to loop.call_later, which takes seconds as a float.
                timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
                h11_max_incomplete_event_size=16 * 1024)


def main() -> int:
    try:
        settings = Settings.from_environ(os.environ)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
