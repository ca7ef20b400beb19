"""Input sources behind one interface: `read(partition) -> pyarrow.Table` in INPUT_SCHEMA.

Shipped: `SampleSource` (deterministic synthetic cases) and `ParquetSource` (partitions on a
file:// or s3:// store). A BigQuery reader would be one more class with the same `read`.
"""

from __future__ import annotations

import io
import zlib
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from apps.batch.exceptions import SourceError
from apps.batch.schema import (
    INPUT_SCHEMA,
    INPUT_TABLE,
    PACKED_FEATURES,
    SourceName,
    features_array,
    pack_features,
    unpack_features,
)
from apps.features import EMBEDDING_DIM, Featurizer
from apps.features.corpus import synthetic_cases
from apps.storage import ObjectStore


class Source(Protocol):
    name: SourceName

    def read(self, partition: str) -> pa.Table: ...


def _conform(table: pa.Table, where: str) -> pa.Table:
    missing = [f.name for f in INPUT_SCHEMA if f.name not in table.column_names and f.name != "features"]
    if missing:
        raise SourceError(f"{where}: expected columns {INPUT_SCHEMA.names}, missing {missing}")
    if "features" not in table.column_names:
        table = table.append_column("features", features_array(None, table.num_rows))
    elif table.schema.field("features").type == PACKED_FEATURES:
        table = table.set_column(table.column_names.index("features"), "features", unpack_features(table.column("features")))
    table = table.select(INPUT_SCHEMA.names)
    if table.schema == INPUT_SCHEMA:
        return table
    try:
        return table.cast(INPUT_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise SourceError(f"{where}: columns do not convert to the input schema {INPUT_SCHEMA}: {e}") from e


class SampleSource:
    """Synthetic redacted cases for a partition, identical for the same (seed, partition).

    With `featurizer`, rows carry precomputed vectors (as an upstream embedding job would
    write them); `invalid_ratio` of rows are made bad on purpose (NaN, wrong norm, empty text)
    so the rejects path is exercised on every sample run.
    """

    name: SourceName = "sample"

    def __init__(self, *, rows: int, seed: int = 0, featurizer: Featurizer | None = None,
                 invalid_ratio: float = 0.01) -> None:
        self.rows, self.seed, self.featurizer, self.invalid_ratio = rows, seed, featurizer, invalid_ratio

    def read(self, partition: str) -> pa.Table:
        pseed = zlib.crc32(f"{self.seed}:{partition}".encode())
        texts, _ = synthetic_cases(self.rows, seed=pseed)
        rng = np.random.default_rng(pseed)
        day = datetime.strptime(partition, "%Y%m%d").replace(tzinfo=UTC)
        created = [day + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 86_400, self.rows))]
        ids = [f"case-{partition}-{i:07d}" for i in range(self.rows)]
        bad = rng.random(self.rows) < self.invalid_ratio
        kind = rng.integers(0, 3, self.rows)
        texts = [("" if bad[i] and kind[i] == 2 else t) for i, t in enumerate(texts)]
        vectors, present = None, None
        if self.featurizer is not None:
            vectors = self.featurizer.transform(texts)
            present = ~(bad & (kind == 2))  # empty texts come without a vector: nothing to compute from
            vectors[bad & (kind == 0), 0] = np.nan
            vectors[bad & (kind == 1), :EMBEDDING_DIM] *= 3.0
        table = pa.table({
            "case_id": pa.array(ids, pa.string()),
            "case_text": pa.array(texts, pa.string()),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "features": features_array(vectors, self.rows, present),
        })
        return _conform(table, f"sample source partition {partition}")


class ParquetSource:
    """Every `*.parquet` under `pcc_cases/partition=YYYYMMDD/` on the store, concatenated."""

    name: SourceName = "parquet"

    def __init__(self, store: ObjectStore, *, table: str = INPUT_TABLE) -> None:
        self.store, self.table = store, table

    def read(self, partition: str) -> pa.Table:
        prefix = f"{self.table}/partition={partition}/"
        keys = [k for k in self.store.list(prefix) if k.endswith(".parquet")]
        if not keys:
            raise SourceError(f"{self.store.uri}: no input partition {prefix}*.parquet; check PARTITION_DATE and "
                              f"that the upstream export for {partition} has run")
        tables = []
        for key in keys:
            try:
                tables.append(_conform(pq.read_table(io.BytesIO(self.store.get_bytes(key))), f"{self.store.uri}/{key}"))
            except pa.ArrowInvalid as e:
                raise SourceError(f"{self.store.uri}/{key}: not a readable Parquet file: {e}") from e
        return pa.concat_tables(tables)


def write_input_partition(store: ObjectStore, partition: str, table: pa.Table, *, packed: bool = False) -> str:
    """Store `table` as the input partition (what an upstream export does; tests and benchmarks use it).

    `packed` writes the vectors as fixed_size_binary(2336) (see `unpack_features`).
    """
    key = f"{INPUT_TABLE}/partition={partition}/part-00000.parquet"
    buf = io.BytesIO()
    table = _conform(table, "input table")
    if packed:
        table = table.set_column(3, "features", pack_features(table.column("features")))
    pq.write_table(table, buf)
    store.put_bytes(key, buf.getvalue())
    return key
