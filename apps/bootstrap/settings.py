"""The bootstrap Job's settings from its ConfigMap (contract: MODEL_FAMILY, MODEL_REGISTRY_URI,
MODEL_CONTRACT (the environment's models.<family> as JSON), S3_ENDPOINT_URL, LOG_LEVEL)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apps.bootstrap.errors import SettingsError
from apps.env_settings import settings_from_environ
from environments.model import ModelContract, ModelFamily

_ENV = {"MODEL_FAMILY": "family", "MODEL_REGISTRY_URI": "registry_uri", "MODEL_CONTRACT": "contract",
        "S3_ENDPOINT_URL": "s3_endpoint_url", "LOG_LEVEL": "log_level"}


class BootstrapSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    family: ModelFamily
    registry_uri: str = Field(pattern=r"^(file|s3)://.+")
    contract: ModelContract
    s3_endpoint_url: str | None = None
    log_level: str = "INFO"

    @field_validator("contract", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"expected the environment's models.<family> as JSON ({e})") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BootstrapSettings:
        return settings_from_environ(
            cls, variables=_ENV, environ=environ, required=("family", "registry_uri", "contract"),
            hint="expected the family, its registry URI and its contract (apps/bootstrap/workload.py sets them)",
            error=SettingsError)
