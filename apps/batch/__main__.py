"""`python -m apps.batch run|backfill|serve`: the container entry point (settings from env)."""

from apps.batch.cli import app

if __name__ == "__main__":
    app(prog_name="python -m apps.batch")
