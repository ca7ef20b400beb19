"""Start one stage: settings, logging, metrics server, device, queues, and the stage loop."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import ExitStack

import numpy as np
import structlog

from apps.fraud import metrics
from apps.fraud.device import resolve_device
from apps.fraud.file_queue import FileQueue
from apps.fraud.model_build import run_model_build
from apps.fraud.records import encode_records
from apps.fraud.settings import FraudSettings, StageName
from apps.fraud.stages import FEATURES, RAW, RESULTS, TRAINING, Inference, Preprocessing, synthetic_transactions
from apps.fraud.worker import ConsumingStage, run_consumer

log = structlog.get_logger(__name__)


def queues(settings: FraudSettings) -> dict[str, FileQueue]:
    return {name: FileQueue(settings.queue_root, name, lease_s=settings.lease_s, max_attempts=settings.max_attempts)
            for name in (RAW, FEATURES, RESULTS, TRAINING)}


def run_data_gather(settings: FraudSettings, queue: FileQueue, stop: threading.Event) -> int:
    """Emit synthetic transactions at GATHER_RATE records/s (0: flat out) until stopped or GATHER_LIMIT.

    Records go out in messages of up to RECORDS_PER_MESSAGE; at a set rate, one message every
    ~100 ms, so a slow trickle is not held back waiting for a full message.
    """
    rng = np.random.default_rng(settings.seed)
    sent, started = 0, time.monotonic()
    per_message = settings.records_per_message
    if settings.gather_rate:
        per_message = max(1, min(per_message, int(settings.gather_rate / 10)))
    while not stop.is_set():
        n = per_message if not settings.gather_limit else min(per_message, settings.gather_limit - sent)
        if n <= 0:
            break
        queue.put(encode_records(synthetic_transactions(n, rng)))
        sent += n
        metrics.PROCESSED.labels("data-gather").inc(n)
        if settings.gather_rate:
            ahead = sent / settings.gather_rate - (time.monotonic() - started)
            if ahead > 0:
                stop.wait(ahead)
    log.info("data_gather_stopped", sent=sent)
    return sent


def run_stage(stage: StageName, settings: FraudSettings, *, stop: threading.Event | None = None) -> None:
    """Run `stage` until SIGTERM/SIGINT (or `stop`): what `python -m apps.fraud <stage>` does."""
    from apps.observability import serve_metrics

    stop = stop or threading.Event()
    qs = queues(settings)
    with ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        if settings.metrics_port:
            # Ready while working; not once SIGTERM asked it to finish its leases and stop.
            stack.enter_context(serve_metrics(settings.metrics_port, ready=lambda: not stop.is_set()))
        log.info("stage_starting", stage=stage, queue_root=str(settings.queue_root), lease_s=settings.lease_s,
                 max_attempts=settings.max_attempts, registry=settings.registry_uri)
        if stage == "data-gather":
            run_data_gather(settings, qs[RAW], stop)
            return
        device = resolve_device(settings.device, stage=stage)
        if stage == "model-build":
            run_model_build(settings, device, qs[TRAINING], stop)
            return
        consumer: ConsumingStage
        if stage == "preprocessing":
            consumer, source, watch = Preprocessing(settings, device), qs[RAW], [qs[RAW], qs[FEATURES], qs[TRAINING]]
        else:
            consumer, source, watch = Inference(settings, device), qs[FEATURES], [qs[FEATURES], qs[RESULTS]]
        run_consumer(consumer, source, batch_size=settings.batch_size, poll_interval_s=settings.poll_interval_s,
                     stop=stop, depth_queues=watch)
        log.info("stage_stopped", stage=stage)
