"""Table schemas of the batch pipeline (pyarrow) and the pydantic records at its boundaries.

Layout on the data store (DATA_URI), partitioned like the seed's BigQuery tables:

    pcc_cases/partition=YYYYMMDD/*.parquet                 input (SOURCE=parquet)
    pcc_inference_output/partition=YYYYMMDD/part-00000.parquet, _SUCCESS
    pcc_inference_rejects/partition=YYYYMMDD/part-00000.parquet
    pcc_monitoring_logs/partition=YYYYMMDD/<runtime>-<run_id>.parquet   one per run (append)
    runs/<run_id>/config.json, status.json, data/...       per-run working data (cleanup job)
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from apps.features import FEATURE_DIM

SourceName = Literal["sample", "parquet"]
INPUT_TABLE = "pcc_cases"
OUTPUT_TABLE = "pcc_inference_output"
REJECTS_TABLE = "pcc_inference_rejects"
MONITORING_TABLE = "pcc_monitoring_logs"
RUNS = "runs"

INPUT_SCHEMA = pa.schema([
    pa.field("case_id", pa.string(), nullable=False),
    pa.field("case_text", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    # Precomputed 584 vectors (MiniLM 384 + TF-IDF 200); null: computed from case_text.
    pa.field("features", pa.list_(pa.float32(), FEATURE_DIM)),
])
OUTPUT_SCHEMA = pa.schema([
    pa.field("case_id", pa.string(), nullable=False),
    pa.field("partition", pa.string(), nullable=False),
    pa.field("is_privacy_case", pa.bool_(), nullable=False),
    pa.field("privacy_score", pa.float32(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("ingestion_time", pa.timestamp("us", tz="UTC"), nullable=False),
])
REJECTS_SCHEMA = pa.schema([
    pa.field("case_id", pa.string()),
    pa.field("partition", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])


PACKED_FEATURES = pa.binary(FEATURE_DIM * 4)


def part_key(table: str, partition: str, name: str = "part-00000.parquet") -> str:
    return f"{table}/partition={partition}/{name}"


def features_array(vectors: np.ndarray | None, n: int, present: np.ndarray | None = None) -> pa.Array:
    """A FixedSizeList<float32>[584] column; rows where `present` is False are null."""
    if vectors is None:
        return pa.nulls(n, pa.list_(pa.float32(), FEATURE_DIM))
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    mask = None if present is None else pa.array(~present)
    return pa.FixedSizeListArray.from_arrays(flat, FEATURE_DIM, mask=mask)


def features_matrix(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(n, 584) float32 view of the vectors and the boolean `present` mask, without copying.

    Rows where `present` is False hold whatever the null slots contain: callers must not read them.
    The view is read-only (it is Arrow's memory).
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if n == 0:
        return np.zeros((0, FEATURE_DIM), np.float32), np.zeros(0, bool)
    if arr.null_count == n:
        return np.zeros((n, FEATURE_DIM), np.float32), np.zeros(n, bool)
    present = np.ones(n, bool) if arr.null_count == 0 else ~arr.is_null().to_numpy(zero_copy_only=False)
    values = arr.values
    data = values.buffers()[1]
    start = (values.offset + arr.offset * FEATURE_DIM) * 4
    matrix = np.frombuffer(data, dtype=np.float32, count=n * FEATURE_DIM, offset=start).reshape(n, FEATURE_DIM)
    return matrix, present


def unpack_features(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The packed layout (fixed_size_binary(2336): 584 little-endian float32 per row) as the list layout.

    Parquet decodes a fixed-size list value by value (repetition levels), a packed binary
    column row by row: producers of large partitions may write the packed layout, ~6x faster to read.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    data = arr.buffers()[1]
    flat = pa.Array.from_buffers(pa.float32(), n * FEATURE_DIM,
                                 [None, data.slice(arr.offset * FEATURE_DIM * 4, n * FEATURE_DIM * 4)])
    return pa.FixedSizeListArray.from_arrays(flat, FEATURE_DIM, mask=arr.is_null() if arr.null_count else None)


def pack_features(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The list layout as the packed one (for producers and benchmarks)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    matrix, present = features_matrix(arr)
    out = pa.FixedSizeBinaryArray.from_buffers(PACKED_FEATURES, len(arr), [None, pa.py_buffer(matrix.tobytes())])
    return out if present.all() else pc.if_else(pa.array(present), out, pa.nulls(len(arr), PACKED_FEATURES))


class StageDurations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingestion_s: float = 0.0
    preprocessing_s: float = 0.0
    inference_s: float = 0.0
    postprocessing_s: float = 0.0
    output_s: float = 0.0


class MonitoringRecord(BaseModel):
    """One per run, appended to pcc_monitoring_logs (the seed's monitoring table)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    partition: str
    runtime_ts: datetime
    source: SourceName
    dry_run: bool
    status: Literal["succeeded", "failed"]
    rows_in: int = Field(ge=0)
    rows_out: int = Field(ge=0)
    rows_rejected: int = Field(ge=0)
    features_computed: int = Field(ge=0)
    embedder: str
    model_version: str | None
    durations: StageDurations
    total_s: float
    rows_per_s: float
    error: str | None = None

    def to_table(self) -> pa.Table:
        row = self.model_dump(mode="python")
        durations = row.pop("durations")
        row.update({f"duration_{k}": v for k, v in durations.items()})
        return pa.Table.from_pylist([row])


class OutputRow(BaseModel):
    """Schema validation of what goes to the output table (a sample of rows is checked per run)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    case_id: str = Field(min_length=1)
    partition: str = Field(pattern=r"^[0-9]{8}$")
    is_privacy_case: bool
    privacy_score: float = Field(ge=0, le=1)
    model_version: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    ingestion_time: datetime
