"""`python -m apps.fraud <data-gather|preprocessing|inference|model-build>`: one stage, settings from env."""

from __future__ import annotations

import os
import sys

from apps.fraud.exceptions import FraudPipelineError
from apps.fraud.settings import STAGES, FraudSettings


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STAGES:
        print(f"usage: python -m apps.fraud <{'|'.join(STAGES)}>; got {argv}", file=sys.stderr)
        return 2
    from apps.fraud.runner import run_stage
    from apps.observability import configure_logging

    try:
        settings = FraudSettings.from_env(os.environ)
        configure_logging(f"fraud-{argv[0]}", settings.log_level)
        run_stage(argv[0], settings)
    except (FraudPipelineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
