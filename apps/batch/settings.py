"""Batch settings, read once from the environment (the contract's variables) into one object."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apps.env_settings import settings_from_environ
from apps.batch.exceptions import SettingsError

_ENV = {
    "DATA_URI": "data_uri", "MODEL_REGISTRY_URI": "model_registry_uri", "S3_ENDPOINT_URL": "s3_endpoint_url",
    "SOURCE": "source", "DRY_RUN": "dry_run", "TZ": "tz", "LOG_LEVEL": "log_level", "METRICS_PORT": "metrics_port",
    "PARTITION_DATE": "partition_date", "EMBEDDER": "embedder", "SAMPLE_ROWS": "sample_rows",
    "SAMPLE_SEED": "sample_seed", "SERVE_INTERVAL_S": "serve_interval_s",
}


def parse_partition(value: str, *, field: str = "partition") -> str:
    """YYYYMMDD, a real calendar date."""
    if not re.fullmatch(r"[0-9]{8}", value or ""):
        raise SettingsError(f"{field}: expected a date as YYYYMMDD (e.g. 20250115), got {value!r}")
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise SettingsError(f"{field}: {value!r} is not a calendar date") from None
    return value


def yesterday_utc(now: datetime | None = None) -> str:
    return ((now or datetime.now(UTC)).date() - timedelta(days=1)).strftime("%Y%m%d")


def partition_range(start: str, end: str) -> list[str]:
    a = datetime.strptime(parse_partition(start, field="--start"), "%Y%m%d").date()
    b = datetime.strptime(parse_partition(end, field="--end"), "%Y%m%d").date()
    if b < a:
        raise SettingsError(f"--end {end} is before --start {start}")
    return [(a + timedelta(days=i)).strftime("%Y%m%d") for i in range((b - a).days + 1)]


class BatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_uri: str = Field(pattern=r"^(file|s3)://.+")
    model_registry_uri: str = Field(pattern=r"^(file|s3)://.+")
    s3_endpoint_url: str | None = None
    source: Literal["sample", "parquet"]
    dry_run: bool = False
    tz: str = "UTC"
    log_level: str = "INFO"
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    partition_date: str | None = None
    embedder: Literal["auto", "minilm", "hashing"] = "auto"
    sample_rows: int = Field(default=1000, ge=1, le=10_000_000)
    sample_seed: int = 0
    serve_interval_s: float = Field(default=300.0, gt=0)

    @field_validator("partition_date")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        return None if value is None else parse_partition(value, field="PARTITION_DATE")

    def partition(self, explicit: str | None = None) -> str:
        """--partition, else PARTITION_DATE, else yesterday (UTC): the daily CronJob's default."""
        if explicit:
            return parse_partition(explicit, field="--partition")
        return self.partition_date or yesterday_utc()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> BatchSettings:
        return settings_from_environ(
            cls, variables=_ENV, environ=environ, overrides=overrides, required=("data_uri", "model_registry_uri", "source"),
            hint="expected DATA_URI and MODEL_REGISTRY_URI as file:// or s3:// URIs and SOURCE as sample or parquet",
            error=SettingsError,
        )

