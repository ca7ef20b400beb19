"""The consuming loop every stage shares: claim a batch, process it, ack or fail each item.

A lease keeper thread renews the leases of the batch in flight, so a slow batch keeps its
items while a killed worker loses them after LEASE_S (and another worker redoes them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from apps.fraud import metrics
from apps.fraud.exceptions import LeaseLost, PoisonItem
from apps.fraud.file_queue import FileQueue
from apps.fraud.queue_interface import Claimed

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of one item: outputs to publish (queue -> payload), or an error."""

    outputs: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    retry: bool = True
    # Single bad records of the message: (index, error, record); dead-lettered, the rest goes on.
    rejected: list[tuple[int, str, object]] = field(default_factory=list)
    records: int = 1  # records the message carried (for metrics)

    @classmethod
    def failed(cls, error: BaseException) -> Outcome:
        return cls(error=f"{type(error).__name__}: {error}", retry=not isinstance(error, PoisonItem))


class ConsumingStage(Protocol):
    name: str

    def ready(self) -> bool: ...
    def process(self, items: list[Claimed]) -> list[Outcome]: ...


class LeaseKeeper:
    """Renews the leases of the items in flight every lease/3 seconds, in a daemon thread."""

    def __init__(self, queue: FileQueue) -> None:
        self.queue = queue
        self.lock = threading.Lock()
        self.items: dict[str, Claimed] = {}
        self.lost: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-keeper:{queue.name}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def hold(self, items: list[Claimed]) -> None:
        """Keep exactly `items` (a fresh batch) renewed."""
        with self.lock:
            self.items = {c.item_id: c for c in items}
            self.lost.clear()

    def add(self, items: list[Claimed]) -> None:
        """Also keep `items` renewed, leaving the (already renewed) ones held so far as they are."""
        with self.lock:
            for c in items:
                self.items.setdefault(c.item_id, c)

    def _run(self) -> None:
        while not self._stop.wait(self.queue.lease_s / 3):
            with self.lock:
                for item_id, item in list(self.items.items()):
                    try:
                        self.items[item_id] = self.queue.renew(item)
                    except LeaseLost as e:
                        log.warning("lease_lost", queue=self.queue.name, item_id=item_id, error=str(e))
                        self.lost.add(item_id)
                        del self.items[item_id]


def settle(queue: FileQueue, keeper: LeaseKeeper, stage: str, items: list[Claimed], outcomes: list[Outcome]) -> None:
    """Ack or fail each item with the lease the keeper currently holds for it."""
    with keeper.lock:
        for item, outcome in zip(items, outcomes, strict=True):
            current = keeper.items.pop(item.item_id, None)
            if current is None:
                metrics.FAILED.labels(stage, "lease-lost").inc()
                continue
            if outcome.error is None:
                if outcome.rejected:
                    queue.reject_records(current, outcome.rejected)
                    log.warning("records_dead_lettered", stage=stage, item_id=item.item_id, count=len(outcome.rejected),
                                first_error=outcome.rejected[0][1])
                if queue.ack(current, outcome.outputs):
                    metrics.PROCESSED.labels(stage).inc(outcome.records - len(outcome.rejected))
                    if outcome.rejected:
                        metrics.FAILED.labels(stage, "record-dead-letter").inc(len(outcome.rejected))
                else:
                    metrics.FAILED.labels(stage, "lease-lost").inc()
                continue
            where = queue.fail(current, outcome.error, retry=outcome.retry)
            metrics.FAILED.labels(stage, where).inc()
            log.warning("item_failed", stage=stage, item_id=item.item_id, attempt=item.attempt, went_to=where,
                        error=outcome.error)


def process_safely(stage: ConsumingStage, items: list[Claimed]) -> list[Outcome]:
    """The stage's batch result; if the batch as a whole raises, items are redone one by one so
    one poison item fails alone rather than taking its batch-mates to dead-letter with it."""
    try:
        outcomes = stage.process(items)
    except Exception:
        outcomes = []
        for item in items:
            try:
                outcomes.extend(stage.process([item]))
            except Exception as e:  # noqa: BLE001 - the item's error is recorded with it
                outcomes.append(Outcome.failed(e))
    return outcomes


def run_consumer(stage: ConsumingStage, queue: FileQueue, *, batch_size: int, poll_interval_s: float,
                 stop: threading.Event, depth_queues: list[FileQueue] | None = None,
                 on_idle: Callable[[], None] | None = None) -> None:
    """Run until `stop` is set; reaps expired leases and publishes queue depths every lease/4 s."""
    last_reap = 0.0
    with LeaseKeeper(queue) as keeper:
        while not stop.is_set():
            now = time.monotonic()
            if now - last_reap >= queue.lease_s / 4:
                last_reap = now
                reaped = queue.reap()
                if any(reaped.values()):
                    log.info("queue_reaped", queue=queue.name, **reaped)
                for q in depth_queues or [queue]:
                    for state, n in q.depth().items():
                        metrics.QUEUE_DEPTH.labels(q.name, state).set(n)
            if not stage.ready():
                stop.wait(poll_interval_s)
                continue
            items = queue.claim(batch_size)
            if not items:
                if on_idle:
                    on_idle()
                stop.wait(poll_interval_s)
                continue
            keeper.hold(items)
            started = time.perf_counter()
            outcomes = process_safely(stage, items)
            records = sum(o.records for o in outcomes) or 1
            metrics.STAGE_LATENCY.labels(stage.name).observe((time.perf_counter() - started) / records)
            settle(queue, keeper, stage.name, items, outcomes)
