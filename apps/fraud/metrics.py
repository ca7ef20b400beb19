"""Prometheus metrics of the fraud stages (defined once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge("fraud_queue_depth", "Items in a queue folder", ["queue", "state"])
PROCESSED = Counter("fraud_items_processed_total", "Items a stage finished and published", ["stage"])
FAILED = Counter("fraud_items_failed_total", "Items a stage failed, by where they went", ["stage", "outcome"])
STAGE_LATENCY = Histogram(
    "fraud_stage_item_seconds", "Processing time per item within a stage (batch time / batch size)", ["stage"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
END_TO_END = Histogram(
    "fraud_end_to_end_seconds", "From data-gather to a published score", [],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
MODEL_VERSION = Gauge("fraud_model_info", "The model version a stage uses (value 1)", ["stage", "version", "device"])
