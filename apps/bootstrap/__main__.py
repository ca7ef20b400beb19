"""`python -m apps.bootstrap`: the model-bootstrap Job's entry point (settings from env).

Prints the outcome as one JSON line; exits 1 with one line naming the family on any error."""

from __future__ import annotations

import json
import os
import sys

import structlog

from apps.bootstrap.errors import BootstrapError
from apps.inference import InferenceError
from apps.storage import StorageError


def main(environ: dict[str, str]) -> int:
    from apps.bootstrap.run import bootstrap
    from apps.bootstrap.settings import BootstrapSettings
    from apps.inference import ModelRegistry
    from apps.observability import configure_logging

    try:
        settings = BootstrapSettings.from_env(environ)
    except BootstrapError as e:
        print(f"model-bootstrap: {e}", file=sys.stderr)
        return 1
    configure_logging("model-bootstrap", settings.log_level)
    try:
        registry = ModelRegistry(settings.registry_uri, endpoint_url=settings.s3_endpoint_url)
        outcome = bootstrap(settings.family, settings.contract, registry)
    except (BootstrapError, InferenceError, StorageError) as e:
        structlog.get_logger().error("bootstrap_failed", family=settings.family, registry=settings.registry_uri,
                                     error=str(e))
        return 1
    print(json.dumps(outcome.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
