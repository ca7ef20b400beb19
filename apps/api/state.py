"""The served model and its hot reload.

Requests read `state.current` once and use that snapshot to the end, so replacing it is a
single reference assignment: an in-flight request finishes on the model it started with,
the next one gets the new model, and none fails during the swap.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import numpy as np
import structlog

from apps.api.metrics import ApiMetrics
from apps.api.schemas import ReloadError
from apps.inference import FeatureSchema, ModelRegistry, Predictor, load_runtime
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


RETRY_MAX_S = 300.0  # a version that keeps failing is still tried every five minutes


@dataclass
class _Refusal:
    version: str | None
    attempts: int
    retry_at: float  # time.monotonic()


class ModelState:
    """Holds the current verified model; `refresh()` loads the registry's active version if it changed.

    A version that fails to load (corrupt bytes, a store error) is retried with exponential
    backoff from `retry_base_s` up to RETRY_MAX_S, so a restored file or a store that comes
    back is picked up without a promotion or a restart. A replica that starts while the active
    version fails serves the newest verified version of the pointer's history instead, as the
    replicas already running do (they kept it), and moves to the active one once it loads.
    """

    def __init__(self, registry: ModelRegistry, *, runtime: str, metrics: ApiMetrics, threads: int = 1,
                 retry_base_s: float = 1.0, contract: FeatureSchema | None = None) -> None:
        self.registry = registry
        self.contract = contract
        self.runtime = runtime
        self.threads = threads
        self.metrics = metrics
        self.retry_base_s = retry_base_s
        self.current: LoadedModel | None = None
        self.active: str | None = None  # what the registry says should serve
        self.last_error: ReloadError | None = None
        self._refusal: _Refusal | None = None

    def _load(self, version: str) -> LoadedModel:
        """Blocking: verify, build the runtime and warm it up, off the event loop."""
        current = self.current
        # Every replica holds the same contract (its ConfigMap's, else the family's recorded one), so
        # none can serve another schema than its siblings, whatever is promoted or when it starts.
        expected = self.contract or self.registry.contract() or (current.metadata.feature_schema if current else None)
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
            pointer = await anyio.to_thread.run_sync(self.registry.active_pointer)
        except Exception as e:  # a registry outage must not take the serving model down
            self._record_failure(None, f"cannot read the registry's active version: {e}")
            return False
        current = self.current
        active = pointer.version if pointer else None
        self.active = active
        if active is None or (current and current.version == active):
            self._clear_failure()
            return False
        refusal = self._refusal
        if refusal and refusal.version == active and time.monotonic() < refusal.retry_at:
            return False  # backing off
        try:
            loaded = await anyio.to_thread.run_sync(self._load, active)
        except Exception as e:
            self._record_failure(active, str(e))
            if current is None and pointer:
                return await self._fall_back(active, pointer.history)
            return False
        self._swap(loaded)
        return True

    async def _fall_back(self, active: str, history: list[str]) -> bool:
        """A fresh replica: the newest version of the history that verifies, while `active` fails."""
        for version in reversed(history):
            if version == active:
                continue
            try:
                loaded = await anyio.to_thread.run_sync(self._load, version)
            except Exception as e:
                log.warning("fallback_refused", version=version, error=str(e))
                continue
            self._swap(loaded, clear=False)
            log.warning("model_fallback", serving=version, active=active,
                        reason="the active version fails to load; retried with backoff")
            return True
        return False

    def _swap(self, loaded: LoadedModel, *, clear: bool = True) -> None:
        previous = self.current.version if self.current else None
        self.current = loaded  # the atomic swap
        if clear:
            self._clear_failure()
        self.metrics.model_loaded(loaded.version, loaded.predictor.backend, loaded.predictor.device)
        self.metrics.reloads.labels(outcome="loaded").inc()
        log.info("model_loaded", version=loaded.version, previous=previous, backend=loaded.predictor.backend,
                 device=loaded.predictor.device, providers=getattr(loaded.predictor, "providers", []))

    def _clear_failure(self) -> None:
        self._refusal, self.last_error = None, None
        self.metrics.reload_failures.set(0)

    def _record_failure(self, version: str | None, error: str) -> None:
        refusal = self._refusal
        attempts = refusal.attempts + 1 if refusal and refusal.version == version else 1
        delay = min(RETRY_MAX_S, self.retry_base_s * 2 ** (attempts - 1))
        self._refusal = _Refusal(version=version, attempts=attempts, retry_at=time.monotonic() + delay)
        now = datetime.now(UTC)
        self.last_error = ReloadError(version=version, error=error, at=now, attempts=attempts,
                                      next_retry_at=now + timedelta(seconds=delay))
        self.metrics.reloads.labels(outcome="refused").inc()
        self.metrics.reload_failures.set(attempts)
        log.error("model_refused" if version else "registry_unreachable", version=version, error=error,
                  attempts=attempts, retry_in_s=round(delay, 3), serving=self.current.version if self.current else None)

    async def poll(self, interval_s: float) -> None:
        """Run until cancelled: check the registry every `interval_s` seconds."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()
