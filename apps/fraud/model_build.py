"""model-build: gather labelled feature rows from training-queue under lease, train, publish.

Rows stay leased (renewed) while they accumulate; they are acked only after the new version
is published, so a crash mid-training loses no training data.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import structlog
from pydantic import ValidationError

from apps.fraud import metrics
from apps.fraud.device import DeviceChoice
from apps.fraud.exceptions import PoisonItem
from apps.fraud.file_queue import FileQueue
from apps.fraud.queue_interface import Claimed
from apps.fraud.records import FEATURE_NAMES, FeatureRow, feature_matrix
from apps.fraud.settings import FraudSettings
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


def run_model_build(settings: FraudSettings, device: DeviceChoice, queue: FileQueue, stop: threading.Event) -> None:
    if device.device == "cuda":
        log.warning("training_on_cpu", stage=STAGE, reason="scikit-learn trains on the CPU; the GPU is not used")
    held: list[Claimed] = []
    rows: list[FeatureRow] = []
    last_reap = 0.0
    with LeaseKeeper(queue) as keeper:
        while not stop.is_set():
            if time.monotonic() - last_reap >= queue.lease_s / 4:
                last_reap = time.monotonic()
                queue.reap()
                for state, n in queue.depth().items():
                    metrics.QUEUE_DEPTH.labels(queue.name, state).set(n)
            fresh = queue.claim(min(settings.batch_size * 8, 2000))
            bad: list[tuple[Claimed, Outcome]] = []
            for item in fresh:
                try:
                    row = FeatureRow.model_validate_json(item.payload)
                    if row.is_fraud is None:
                        raise PoisonItem("training rows need the is_fraud label")
                except (ValidationError, PoisonItem) as e:
                    bad.append((item, Outcome.failed(e if isinstance(e, PoisonItem) else PoisonItem(str(e)))))
                    continue
                held.append(item)
                rows.append(row)
            keeper.add([*held, *(b[0] for b in bad)])
            if bad:
                settle(queue, keeper, STAGE, [b[0] for b in bad], [b[1] for b in bad])
            # Items whose lease the keeper lost belong to another worker now.
            with keeper.lock:
                keep = [i for i, c in enumerate(held) if c.item_id in keeper.items]
            held, rows = [held[i] for i in keep], [rows[i] for i in keep]
            labels = {bool(r.is_fraud) for r in rows}
            if len(rows) < settings.min_training_items or len(labels) < 2:
                if not fresh:
                    stop.wait(settings.poll_interval_s)
                continue
            try:
                build_model(settings, rows)
                outcomes = [Outcome() for _ in held]
            except Exception as e:  # noqa: BLE001 - every held row is returned for another attempt
                log.error("model_build_failed", error=str(e), rows=len(rows))
                outcomes = [Outcome.failed(e) for _ in held]
            settle(queue, keeper, STAGE, held, outcomes)
            held, rows = [], []
        # Stopping: hand the rows back at once rather than waiting for their leases to expire.
        settle(queue, keeper, STAGE, held, [Outcome(error="worker stopping", retry=True) for _ in held])
