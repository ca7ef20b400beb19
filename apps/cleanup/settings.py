"""Cleanup settings from the environment (contract: DATA_URI, S3_ENDPOINT_URL,
SUCCESS_RETENTION_HOURS, FAILED_RETENTION_HOURS, DRY_RUN)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
        values: dict[str, object] = {f: environ[v] for v, f in _ENV.items() if environ.get(v, "") != ""}
        values.update({k: v for k, v in overrides.items() if v is not None})
        missing = [v for v, f in _ENV.items() if f in _REQUIRED and f not in values]
        if missing:
            raise SettingsError(f"{', '.join(missing)} not set: expected the data store URI and the retention hours "
                                "(the environment's apps.cleanup.success_retention_hours / failed_retention_hours)")
        if isinstance(values.get("dry_run"), str):
            raw = str(values["dry_run"]).lower()
            if raw not in ("true", "false", "1", "0", "yes", "no"):
                raise SettingsError(f"DRY_RUN: expected true or false, got {values['dry_run']!r}")
            values["dry_run"] = raw in ("true", "1", "yes")
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            first = e.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "?"
            var = next((v for v, f in _ENV.items() if f == field), field)
            raise SettingsError(f"{var}={values.get(field)!r}: {first['msg']}") from None
