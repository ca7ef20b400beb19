"""Locustfiles, one per profile of `env.perf.profiles`; run by `harness.load.runner` in a subprocess."""

from pathlib import Path

LOCUSTFILES = Path(__file__).resolve().parent


def locustfile(profile: str) -> Path:
    return LOCUSTFILES / f"{profile}.py"
