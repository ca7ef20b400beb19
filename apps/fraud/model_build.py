"""model-build: gather labelled feature rows from training-queue under lease, train, publish.

Messages stay leased (renewed) while their rows accumulate; they are acked only after the new
version is published, so a crash mid-training loses no training data.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import structlog

from apps.fraud import metrics
from apps.fraud.device import DeviceChoice
from apps.fraud.file_queue import FileQueue
from apps.fraud.queue_interface import Claimed
from apps.fraud.records import FEATURE_NAMES, FeatureRow, feature_matrix
from apps.fraud.settings import FraudSettings
from apps.fraud.stages import parse_records
from apps.fraud.worker import LeaseKeeper, Outcome, settle

log = structlog.get_logger(__name__)
STAGE = "model-build"


def build_model(settings: FraudSettings, rows: list[FeatureRow], *, classifier: str = "random_forest") -> str | None:
    """Train on `rows`, publish the version, promote it when its ROC AUC reaches MIN_AUC."""
    from apps.inference import Dataset, ModelRegistry, train

    y = np.asarray([int(bool(r.is_fraud)) for r in rows], dtype=np.int64)
    dataset = Dataset.from_arrays(feature_matrix(rows), y, features=list(FEATURE_NAMES))
    trained = train(dataset, classifier=classifier, seed=settings.seed or 0)
    registry = ModelRegistry(settings.registry_uri, endpoint_url=settings.s3_endpoint_url)
    version = registry.publish(trained)
    promoted = trained.metrics.roc_auc >= settings.min_auc
    if promoted:
        registry.promote(version)
    log.info("model_built", version=version, promoted=promoted, rows=len(rows), frauds=int(y.sum()),
             **trained.metrics.model_dump())
    return version if promoted else None


class _Held:
    """Messages under lease and the labelled rows they carry."""

    def __init__(self) -> None:
        self.items: list[Claimed] = []
        self.rows: dict[str, list[FeatureRow]] = {}
        self.rejected: dict[str, list[tuple[int, str, object]]] = {}

    def add(self, item: Claimed, rows: list[FeatureRow], rejected: list[tuple[int, str, object]]) -> None:
        self.items.append(item)
        self.rows[item.item_id] = rows
        self.rejected[item.item_id] = rejected

    def keep_only(self, alive: set[str]) -> None:
        self.items = [i for i in self.items if i.item_id in alive]
        self.rows = {k: v for k, v in self.rows.items() if k in alive}

    def all_rows(self) -> list[FeatureRow]:
        return [r for i in self.items for r in self.rows[i.item_id]]

    def outcomes(self, error: BaseException | None = None) -> list[Outcome]:
        if error is not None:
            return [Outcome.failed(error) for _ in self.items]
        return [Outcome(rejected=self.rejected[i.item_id], records=len(self.rows[i.item_id]) + len(self.rejected[i.item_id]))
                for i in self.items]


def run_model_build(settings: FraudSettings, device: DeviceChoice, queue: FileQueue, stop: threading.Event) -> None:
    if device.device == "cuda":
        log.warning("training_on_cpu", stage=STAGE, reason="scikit-learn trains on the CPU; the GPU is not used")
    held = _Held()
    last_reap = 0.0
    with LeaseKeeper(queue) as keeper:
        while not stop.is_set():
            if time.monotonic() - last_reap >= queue.lease_s / 4:
                last_reap = time.monotonic()
                queue.reap()
                for state, n in queue.depth().items():
                    metrics.QUEUE_DEPTH.labels(queue.name, state).set(n)
            fresh = queue.claim(settings.batch_size)
            good, broken, rejected, _ = parse_records(fresh, FeatureRow)
            keeper.add(fresh)
            if broken:
                settle(queue, keeper, STAGE, [fresh[m] for m in broken], list(broken.values()))
            per_item: dict[int, list[FeatureRow]] = {}
            for m, r, row in good:
                if row.is_fraud is None:
                    rejected.setdefault(m, []).append((r, "training rows need the is_fraud label", row.model_dump()))
                else:
                    per_item.setdefault(m, []).append(row)
            for m, item in enumerate(fresh):
                if m not in broken:
                    held.add(item, per_item.get(m, []), rejected.get(m, []))
            # Messages whose lease the keeper lost belong to another worker now.
            with keeper.lock:
                held.keep_only(set(keeper.items))
            rows = held.all_rows()
            if len(rows) < settings.min_training_items or len({bool(r.is_fraud) for r in rows}) < 2:
                if not fresh:
                    stop.wait(settings.poll_interval_s)
                continue
            try:
                build_model(settings, rows)
                outcomes = held.outcomes()
            except Exception as e:  # noqa: BLE001 - every held message is returned for another attempt
                log.error("model_build_failed", error=str(e), rows=len(rows))
                outcomes = held.outcomes(e)
            settle(queue, keeper, STAGE, held.items, outcomes)
            held = _Held()
        # Stopping: hand the rows back at once rather than waiting for their leases to expire.
        with keeper.lock:
            for item in held.items:
                current = keeper.items.pop(item.item_id, None)
                if current is not None:
                    queue.release(current)
