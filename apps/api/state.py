"""The served model and its hot reload.

Requests read `state.current` once and use that snapshot to the end, so replacing it is a
single reference assignment: an in-flight request finishes on the model it started with,
the next one gets the new model, and none fails during the swap.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import numpy as np
import structlog

from apps.api.metrics import ApiMetrics
from apps.api.schemas import ReloadError
from apps.inference import ModelRegistry, Predictor, load_runtime
from apps.inference.registry import ModelMetadata

log = structlog.get_logger()


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    metadata: ModelMetadata
    loaded_at: datetime
    classes: np.ndarray

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def n_features(self) -> int:
        return self.metadata.feature_schema.n_features


class ModelState:
    """Holds the current verified model; `refresh()` loads the registry's active version if it changed."""

    def __init__(self, registry: ModelRegistry, *, runtime: str, metrics: ApiMetrics, threads: int = 1) -> None:
        self.registry = registry
        self.runtime = runtime
        self.threads = threads
        self.metrics = metrics
        self.current: LoadedModel | None = None
        self.last_error: ReloadError | None = None
        self._refused: str | None = None

    def _load(self, version: str) -> LoadedModel:
        """Blocking: verify, build the runtime and warm it up, off the event loop."""
        current = self.current
        # A hot swap keeps the API's contract: a version with another feature schema needs a new rollout.
        expected = current.metadata.feature_schema if current else None
        artifact = self.registry.load(version, expected_schema=expected)
        predictor = load_runtime(artifact, prefer=self.runtime, threads=self.threads)  # type: ignore[arg-type]
        schema = artifact.schema
        probe = predictor.predict_proba(np.zeros((1, schema.n_features), dtype=np.float32))
        if probe.shape != (1, len(schema.classes)):
            raise ValueError(f"runtime returned shape {probe.shape} for one record, expected (1, {len(schema.classes)})")
        return LoadedModel(predictor=predictor, metadata=artifact.metadata, loaded_at=datetime.now(UTC),
                           classes=np.asarray(schema.classes))

    async def refresh(self) -> bool:
        """Load the active version when it differs from the served one; True when a new model was swapped in."""
        try:
            active = await anyio.to_thread.run_sync(self.registry.active_version)
        except Exception as e:  # a registry outage must not take the serving model down
            self._record_failure(None, f"cannot read the registry's active version: {e}")
            return False
        current = self.current
        if active is None or (current and current.version == active) or active == self._refused:
            return False
        try:
            loaded = await anyio.to_thread.run_sync(self._load, active)
        except Exception as e:
            self._refused = active
            self._record_failure(active, str(e))
            return False
        previous = current.version if current else None
        self.current = loaded  # the atomic swap
        self._refused, self.last_error = None, None
        self.metrics.model_loaded(loaded.version, loaded.predictor.backend, loaded.predictor.device)
        self.metrics.reloads.labels(outcome="loaded").inc()
        log.info("model_loaded", version=loaded.version, previous=previous, backend=loaded.predictor.backend,
                 device=loaded.predictor.device, providers=getattr(loaded.predictor, "providers", []))
        return True

    def _record_failure(self, version: str | None, error: str) -> None:
        self.last_error = ReloadError(version=version, error=error, at=datetime.now(UTC))
        self.metrics.reloads.labels(outcome="refused").inc()
        log.error("model_refused" if version else "registry_unreachable", version=version, error=error,
                  serving=self.current.version if self.current else None)

    async def poll(self, interval_s: float) -> None:
        """Run until cancelled: check the registry every `interval_s` seconds."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()
