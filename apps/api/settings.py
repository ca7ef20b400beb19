"""The API's settings: one pydantic object read once from the process environment.

What an environment file decides (port, batch limit, reload interval, request limits) has no
default here: the Deployment's ConfigMap sets every one (apps/api/workload.py), and a process
started without one fails naming the variable. The image reads no environment file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from apps.inference.dataset import FeatureSchema


class SettingsError(ValueError):
    """A bad or missing environment variable; the message is one line naming it."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_registry_uri: str = Field(pattern=r"^(file|s3)://.+")
    # The family's contract as JSON ({"features": [...], "classes": [...]}): a version of another
    # schema is never loaded. Unset: the registry's recorded contract, else the first model's.
    model_contract: FeatureSchema | None = None
    s3_endpoint_url: str | None = None
    host: str = "0.0.0.0"
    port: int = Field(ge=1, le=65535)
    batch_limit: int = Field(ge=1, le=10_000)
    reload_interval_s: float = Field(gt=0)
    # Request limits (environments/model.py InferenceApi says what each bounds).
    max_body_bytes: int = Field(ge=1024)
    max_connections: int = Field(ge=16)
    header_timeout_s: float = Field(gt=0)
    keep_alive_s: float = Field(gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    runtime: Literal["onnx", "sklearn"] = "onnx"
    # ONNX Runtime intra-op threads: 1 suits single records under a CPU limit (no idle spinning threads).
    runtime_threads: int = Field(default=1, ge=1, le=64)
    # Test-only faults for the load gates; refused unless explicitly allowed (never in production).
    fault_injection_allowed: bool = False
    fault_latency_ms: float = Field(default=0.0, ge=0, le=60_000)
    fault_error_ratio: float = Field(default=0.0, ge=0, le=1)

    @field_validator("model_contract", mode="before")
    @classmethod
    def _contract_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f'expected JSON {{"features": [...], "classes": [...]}} ({e})') from None

    @model_validator(mode="after")
    def _faults_need_permission(self) -> Settings:
        if (self.fault_latency_ms or self.fault_error_ratio) and not self.fault_injection_allowed:
            raise ValueError(
                f"FAULT_LATENCY_MS={self.fault_latency_ms:g} / FAULT_ERROR_RATIO={self.fault_error_ratio:g} set while "
                "FAULT_INJECTION_ALLOWED is false: fault injection is test-only; unset the faults or allow them"
            )
        return self

    @property
    def faults_active(self) -> bool:
        return bool(self.fault_latency_ms or self.fault_error_ratio)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read `MODEL_REGISTRY_URI`, `PORT`, ... (the upper-cased field names) from `environ`."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = environ.get(name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        if "log_level" in values:
            values["log_level"] = str(values["log_level"]).upper()
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            first = e.errors()[0]
            msg = first["msg"].removeprefix("Value error, ")
            if not first["loc"]:  # a cross-field rule: its message names the variables itself
                raise SettingsError(msg) from None
            seen = f", got {first['input']!r}" if first["type"] != "missing" else ""
            raise SettingsError(f"{str(first['loc'][0]).upper()}: {msg}{seen}") from None
