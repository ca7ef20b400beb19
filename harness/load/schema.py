"""The model's feature schema, read from the API's /v1/model, and rows generated from it.

Rows are drawn per feature from the schema's own statistics when it publishes them (mean and
standard deviation, clipped to min/max), so payloads look like the data the model was trained
on rather than zeros; a seeded generator keeps runs repeatable.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.load.errors import SchemaError, TargetError


class Feature(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    mean: float = 0.0
    std: float = Field(default=1.0, ge=0)
    min: float | None = None
    max: float | None = None


class FeatureSchema(BaseModel):
    """What the load generator needs to know about the active model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_version: str
    features: list[Feature] = Field(min_length=1)

    def row(self, rng: random.Random) -> list[float]:
        values = []
        for f in self.features:
            v = rng.gauss(f.mean, f.std) if f.std else f.mean
            if f.min is not None:
                v = max(v, f.min)
            if f.max is not None:
                v = min(v, f.max)
            values.append(round(v, 6))
        return values

    def rows(self, rng: random.Random, count: int) -> list[list[float]]:
        return [self.row(rng) for _ in range(count)]


def parse_model_info(data: Any, *, source: str) -> FeatureSchema:
    """Turn the /v1/model answer into a `FeatureSchema`; `source` names where it came from."""
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: expected a JSON object describing the active model, got {type(data).__name__}")
    version = data.get("version") or data.get("active_version") or data.get("model_version")
    schema = data.get("feature_schema") or data.get("schema") or data
    if not isinstance(schema, dict):
        raise SchemaError(f"{source}: field 'feature_schema' should be an object, got {type(schema).__name__}")
    features = _features(schema)
    if not features:
        raise SchemaError(
            f"{source}: no feature list in the answer (looked for feature_schema.features, feature_names, "
            f"n_features); keys seen: {sorted(data)}; is this the inference API with a model loaded?"
        )
    try:
        return FeatureSchema(model_version=str(version or "unknown"), features=features)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SchemaError(f"{source}: feature schema field {where}: {first['msg']}") from None


def _features(schema: dict[str, Any]) -> list[Feature]:
    raw = schema.get("features")
    if isinstance(raw, list) and raw:
        return [Feature(name=item) if isinstance(item, str) else Feature.model_validate(item) for item in raw]
    names = schema.get("feature_names") or schema.get("names")
    if isinstance(names, list) and names:
        return [Feature(name=str(n)) for n in names]
    count = schema.get("n_features") or schema.get("num_features") or schema.get("feature_count")
    if isinstance(count, int) and count > 0:
        return [Feature(name=f"f{i}") for i in range(count)]
    return []


def fetch_schema(base_url: str, *, timeout_s: float = 10.0) -> FeatureSchema:
    """GET {base_url}/v1/model and parse it; errors name the URL and what was seen."""
    url = f"{base_url.rstrip('/')}/v1/model"
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as e:
        raise TargetError(f"GET {url} failed: {e}; is the inference API running there?") from None
    if response.status_code != 200:
        raise TargetError(
            f"GET {url} answered {response.status_code} (expected 200 with the active model): {response.text[:200]}"
        )
    try:
        data = response.json()
    except ValueError:
        raise SchemaError(f"GET {url}: expected JSON, got {response.text[:200]!r}") from None
    return parse_model_info(data, source=f"GET {url}")
