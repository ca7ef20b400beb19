"""`python -m apps.cleanup`: the retention CronJob's entry point (settings from env)."""

import os
import sys

from apps.cleanup.cli import run_cleanup

if __name__ == "__main__":
    sys.exit(run_cleanup(dict(os.environ)))
