"""Cleanup settings from the environment (contract: DATA_URI, S3_ENDPOINT_URL,
SUCCESS_RETENTION_HOURS, FAILED_RETENTION_HOURS, DRY_RUN)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from apps.env_settings import settings_from_environ
from apps.cleanup.exceptions import SettingsError

_ENV = {"DATA_URI": "data_uri", "S3_ENDPOINT_URL": "s3_endpoint_url", "SUCCESS_RETENTION_HOURS": "success_retention_hours",
        "FAILED_RETENTION_HOURS": "failed_retention_hours", "DRY_RUN": "dry_run", "LOG_LEVEL": "log_level"}
_REQUIRED = ("data_uri", "success_retention_hours", "failed_retention_hours")


class CleanupSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_uri: str = Field(pattern=r"^(file|s3)://.+")
    s3_endpoint_url: str | None = None
    success_retention_hours: int = Field(ge=1)
    failed_retention_hours: int = Field(ge=1)
    dry_run: bool = False
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> CleanupSettings:
        return settings_from_environ(
            cls, variables=_ENV, environ=environ, overrides=overrides, required=_REQUIRED,
            hint="expected the data store URI and the retention hours "
            "(the environment's apps.cleanup.success_retention_hours / failed_retention_hours)",
            error=SettingsError,
        )
