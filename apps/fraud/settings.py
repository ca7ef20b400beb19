"""Stage settings, read once from the environment at the edge into one typed object.

LEASE_S and MAX_ATTEMPTS have no default here: the environment file holds them
(apps.fraud_pipeline) and the Deployment sets them; `mlops apps fraud` fills them from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from apps.env_settings import settings_from_environ
from apps.fraud.exceptions import SettingsError

StageName = Literal["data-gather", "preprocessing", "inference", "model-build"]
STAGES: tuple[StageName, ...] = ("data-gather", "preprocessing", "inference", "model-build")

# env var -> field; the first block is the cross-room contract, the rest are tuning knobs.
_ENV = {
    "QUEUE_ROOT": "queue_root", "DEVICE": "device", "LEASE_S": "lease_s", "MAX_ATTEMPTS": "max_attempts",
    "MODEL_REGISTRY_URI": "model_registry_uri", "S3_ENDPOINT_URL": "s3_endpoint_url",
    "METRICS_PORT": "metrics_port", "LOG_LEVEL": "log_level",
    "BATCH_SIZE": "batch_size", "POLL_INTERVAL_S": "poll_interval_s", "GATHER_RATE": "gather_rate",
    "GATHER_LIMIT": "gather_limit", "TRAINING_SAMPLE_RATE": "training_sample_rate",
    "MIN_TRAINING_ITEMS": "min_training_items", "MIN_AUC": "min_auc", "RELOAD_INTERVAL_S": "reload_interval_s",
    "FRAUD_THRESHOLD": "fraud_threshold", "SEED": "seed", "RECORDS_PER_MESSAGE": "records_per_message",
}


class FraudSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_root: Path = Path("/mnt/flashblade")
    device: Literal["auto", "cpu", "gpu"] = "auto"
    lease_s: float = Field(gt=0)
    max_attempts: int = Field(ge=1)
    # Default: the seed's `models/` folder on the shared volume.
    model_registry_uri: str | None = None
    s3_endpoint_url: str | None = None
    metrics_port: int = Field(default=8080, ge=0, le=65535)  # 0: no metrics server (local runs, tests)
    log_level: str = "INFO"
    batch_size: int = Field(default=16, ge=1, le=10_000)  # messages claimed per iteration
    records_per_message: int = Field(default=64, ge=1, le=10_000)
    poll_interval_s: float = Field(default=0.2, gt=0)
    gather_rate: float = Field(default=50.0, ge=0)  # items/s; 0 = as fast as the volume takes them
    gather_limit: int = Field(default=0, ge=0)  # stop after this many items; 0 = run until stopped
    training_sample_rate: float = Field(default=0.1, ge=0, le=1)
    min_training_items: int = Field(default=2000, ge=10)  # labelled rows model-build waits for
    min_auc: float = Field(default=0.7, ge=0, le=1)
    reload_interval_s: float = Field(default=5.0, gt=0)
    fraud_threshold: float = Field(default=0.5, gt=0, lt=1)
    seed: int | None = None

    @property
    def registry_uri(self) -> str:
        return self.model_registry_uri or f"file://{self.queue_root.resolve()}/models"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> FraudSettings:
        return settings_from_environ(
            cls, variables=_ENV, environ=environ, overrides=overrides, required=("lease_s", "max_attempts"),
            hint="expected the lease in seconds and the attempts before dead-letter "
            "(the environment's apps.fraud_pipeline.lease_s / max_attempts)",
            error=SettingsError,
        )
