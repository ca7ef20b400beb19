"""The pipeline's stages as plain functions on arrays and tables: each testable on its own.

ingest -> preprocess (validate or compute the 584 vectors) -> infer (vectorised, inference core)
-> postprocess (format + schema validation) ; rows that fail anywhere become rejects with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from pydantic import TypeAdapter, ValidationError

from apps.batch.exceptions import ModelMismatch, OutputSchemaError
from apps.batch.schema import OUTPUT_SCHEMA, REJECTS_SCHEMA, OutputRow, features_matrix
from apps.features import FEATURE_DIM, Featurizer, validate_vectors

log = structlog.get_logger(__name__)
THRESHOLD = 0.5


@dataclass
class Rejects:
    """Rejected rows so far: input row index, stage and reason."""

    index: list[int] = field(default_factory=list)
    stage: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)

    def add(self, idx: np.ndarray | list[int], stage: str, reasons: list[str] | np.ndarray) -> None:
        self.index.extend(int(i) for i in idx)
        self.stage.extend([stage] * len(idx))
        self.reason.extend(str(r) for r in reasons)

    def __len__(self) -> int:
        return len(self.index)

    def to_table(self, case_ids: pa.Array, *, partition: str, run_id: str) -> pa.Table:
        ids = case_ids.take(pa.array(self.index, pa.int64())) if self.index else pa.array([], pa.string())
        n = len(self.index)
        return pa.table({"case_id": ids, "partition": pa.array([partition] * n, pa.string()),
                         "stage": pa.array(self.stage, pa.string()), "reason": pa.array(self.reason, pa.string()),
                         "run_id": pa.array([run_id] * n, pa.string())}, schema=REJECTS_SCHEMA)


@dataclass
class Preprocessed:
    # (n, 584) float32 for every input row (rejected rows hold anything): scoring all rows of
    # Arrow's buffer in place is cheaper than copying out the accepted ones.
    X: np.ndarray
    rows: np.ndarray  # the accepted input rows: only their scores are used
    computed: int  # vectors computed from text in this run


def preprocess(table: pa.Table, featurizer: Callable[[], Featurizer], rejects: Rejects) -> Preprocessed:
    """Validate precomputed vectors (width, finiteness, block norms); compute missing ones from text.

    The vectors stay in Arrow's memory unless some must be computed here.
    """
    ids = table.column("case_id")
    bad_id = ~np.asarray(pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0), False))
    if bad_id.any():
        rejects.add(np.flatnonzero(bad_id), "preprocessing", ["case_id is empty"] * int(bad_id.sum()))
    matrix, present = features_matrix(table.column("features"))
    ok = ~bad_id
    reasons = validate_vectors(matrix)
    invalid = present & ok & (reasons != "")
    if invalid.any():
        rejects.add(np.flatnonzero(invalid), "preprocessing", reasons[invalid])
    ok &= ~invalid
    missing = ok & ~present
    to_compute = np.zeros(0, np.int64)
    texts: list[str | None] = []
    if missing.any():
        texts = table.column("case_text").to_pylist()
        no_text = missing & np.asarray([not (t or "").strip() for t in texts], dtype=bool)
        if no_text.any():
            rejects.add(np.flatnonzero(no_text), "preprocessing",
                        ["no precomputed features and no case_text to compute them from"] * int(no_text.sum()))
        ok &= ~no_text
        to_compute = np.flatnonzero(missing & ~no_text)
    rows = np.flatnonzero(ok)
    if not len(to_compute):
        return Preprocessed(X=matrix, rows=rows, computed=0)  # no copy at all
    X = matrix.copy()
    X[to_compute] = featurizer().transform([texts[i] or "" for i in to_compute])
    return Preprocessed(X=X, rows=rows, computed=len(to_compute))


def check_model(schema_features: list[str], featurizer: Featurizer | None) -> None:
    """The model must take 584 inputs; when vectors are computed here, from the same embedder and vocabulary."""
    if len(schema_features) != FEATURE_DIM:
        raise ModelMismatch(f"the active model takes {len(schema_features)} features; this pipeline produces "
                            f"{FEATURE_DIM} (MiniLM 384 + TF-IDF 200): promote a model trained on 584-dimension vectors")
    if featurizer is not None and not schema_features[0].startswith("f0") and schema_features != featurizer.feature_names:
        raise ModelMismatch(f"the active model was trained on features {schema_features[0]!r}..{schema_features[-1]!r}"
                            f" but this run computes {featurizer.feature_names[0]!r}..{featurizer.feature_names[-1]!r}"
                            " (different embedder or TF-IDF vocabulary): set EMBEDDER to match or retrain")


def infer(predict_proba: Callable[[np.ndarray], np.ndarray], X: np.ndarray, *, positive_column: int,
          chunk: int = 20_000) -> np.ndarray:
    """Positive-class probabilities, in chunks so memory stays flat on big partitions."""
    if len(X) == 0:
        return np.zeros(0, np.float32)
    return np.concatenate([predict_proba(X[i : i + chunk])[:, positive_column] for i in range(0, len(X), chunk)]).astype(np.float32)


_ROWS = TypeAdapter(list[OutputRow])
# Rows checked with the pydantic model besides the vectorised checks that cover every row.
SCHEMA_SAMPLE = 1000


def postprocess(case_ids: pa.Array, rows: np.ndarray, scores: np.ndarray, *, partition: str, run_id: str,
                model_version: str, now: datetime, rejects: Rejects) -> pa.Table:
    """Format output rows and validate them; bad ones go to rejects, never dropped silently.

    Every row gets the OutputRow constraints as vectorised checks (score finite in [0, 1],
    non-empty case_id); an evenly spread sample is also validated by the pydantic model itself,
    which catches any drift between the table and the declared schema.
    """
    ids = case_ids.take(pa.array(rows, pa.int64())) if len(rows) else pa.array([], pa.string())
    id_ok = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False), dtype=bool)
    bad = ~np.isfinite(scores) | (scores < 0) | (scores > 1) | ~id_ok
    if bad.any():
        rejects.add(rows[bad], "postprocessing",
                    [("case_id is empty" if not id_ok[i] else f"score {scores[i]} is outside [0, 1]")
                     for i in np.flatnonzero(bad)])
        keep = np.flatnonzero(~bad)
        rows, scores, ids = rows[keep], scores[keep], ids.take(pa.array(keep, pa.int64()))
    n = len(rows)
    table = pa.table({
        "case_id": ids,
        "partition": pa.array([partition] * n, pa.string()),
        "is_privacy_case": pa.array(scores >= THRESHOLD, pa.bool_()),
        "privacy_score": pa.array(scores, pa.float32()),
        "model_version": pa.array([model_version] * n, pa.string()),
        "run_id": pa.array([run_id] * n, pa.string()),
        "ingestion_time": pa.array(np.full(n, np.datetime64(now.replace(tzinfo=None), "us")), pa.timestamp("us", tz="UTC")),
    }, schema=OUTPUT_SCHEMA)
    sample = np.unique(np.linspace(0, n - 1, min(n, SCHEMA_SAMPLE)).astype(np.int64)) if n else np.zeros(0, np.int64)
    try:
        _ROWS.validate_python(table.take(pa.array(sample, pa.int64())).to_pylist())
    except ValidationError as e:
        err = e.errors()[0]
        raise OutputSchemaError(f"output rows do not match OutputRow: row {err['loc'][0]} field {err['loc'][1:]}: "
                                f"{err['msg']}; the postprocessing code and schema disagree") from e
    return table
