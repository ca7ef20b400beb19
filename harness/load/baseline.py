"""Regression baselines: files in the repo, one per machine profile, environment and profile.

`baselines/<machine>/<env>-<profile>.json` holds what a good run measured on that kind of
machine. They change only when someone runs `mlops harness load run ... --record-baseline`
and commits the file, so a slowdown shows up as a failed gate, not as a drifting baseline.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.load.errors import BaselineError
from harness.load.results import RunResult

BASELINE_DIR = Path(__file__).resolve().parent / "baselines"
MACHINE_ENV = "MLOPS_MACHINE_PROFILE"


class BaselineEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    p95_ms: float = Field(ge=0)
    p99_ms: float = Field(ge=0)


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    machine: str
    env: str
    profile: str
    target: str
    recorded_at: datetime
    requests: int
    requests_per_s: float
    endpoints: dict[str, BaselineEndpoint]


def detect_machine_profile() -> str:
    """Architecture, cores and memory: runs are comparable only on the same kind of machine."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}-{os.cpu_count()}cpu-{round(memory_gib)}gib"


def machine_profile(explicit: str | None = None, environ: dict[str, str] | None = None) -> str:
    """An explicit name, else $MLOPS_MACHINE_PROFILE, else the detected profile."""
    name = explicit or (environ if environ is not None else os.environ).get(MACHINE_ENV) or detect_machine_profile()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise BaselineError(f"machine profile {name!r} is not a file-safe name (letters, digits, '.', '_', '-')")
    return name


def baseline_path(*, machine: str, env: str, profile: str, root: Path = BASELINE_DIR) -> Path:
    return root / machine / f"{env}-{profile}.json"


def load_baseline(path: Path) -> Baseline | None:
    """The baseline at `path`, or None when none was recorded there yet."""
    if not path.is_file():
        return None
    try:
        return Baseline.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise BaselineError(
            f"{path}: field {field!r}: {first['msg']}; re-record it with `mlops harness load run --record-baseline`"
        ) from None


def baseline_from(result: RunResult, *, machine: str, env: str, profile: str, target: str) -> Baseline:
    return Baseline(
        machine=machine,
        env=env,
        profile=profile,
        target=target,
        recorded_at=datetime.now(UTC).replace(microsecond=0),
        requests=result.requests,
        requests_per_s=round(result.requests_per_s, 2),
        endpoints={k: BaselineEndpoint(p95_ms=e.p95_ms, p99_ms=e.p99_ms) for k, e in sorted(result.endpoints.items())},
    )


def write_baseline(baseline: Baseline, path: Path) -> Path:
    """Atomic (temp + rename), stable formatting so a re-record diffs cleanly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(baseline.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
