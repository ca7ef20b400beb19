"""What the runner hands a Locust process: one validated JSON file named by an env variable.

The locustfiles read nothing else, so a run is fully described by its plan (kept as an artifact).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from environments.model import LoadProfile, LoadProfileName
from harness.load.schema import FeatureSchema

PLAN_ENV = "MLOPS_LOAD_PLAN"

# Endpoint keys as Locust names them ("METHOD /path"), the same keys env.perf uses.
PREDICT = "POST /v1/predict"
PREDICT_BATCH = "POST /v1/predict/batch"
MODEL = "GET /v1/model"


class LoadPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: LoadProfileName
    users: int = Field(ge=1)
    spawn_rate: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    max_requests: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    user_rps: float | None = Field(default=None, gt=0)
    schema_: FeatureSchema = Field(alias="schema")
    seed: int = 0
    # Requests sent with one feature missing at the start of the run: a real 4xx the API
    # returns, used to prove a lone failure does not fail a gate whose failure ratio allows it.
    malformed_requests: int = Field(default=0, ge=0)

    @classmethod
    def build(
        cls,
        *,
        profile_name: LoadProfileName,
        profile: LoadProfile,
        schema: FeatureSchema,
        batch_size: int,
        malformed_requests: int = 0,
        seed: int = 0,
    ) -> LoadPlan:
        return cls.model_validate(
            {
                "profile": profile_name,
                "users": profile.users,
                "spawn_rate": profile.spawn_rate,
                "duration_s": profile.duration_s,
                "max_requests": profile.max_requests,
                "batch_size": batch_size,
                "user_rps": profile.user_rps,
                "schema": schema.model_dump(),
                "seed": seed,
                "malformed_requests": malformed_requests,
            }
        )

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(by_alias=True, indent=2), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> LoadPlan:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))
