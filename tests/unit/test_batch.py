"""The PCC batch pipeline on small data: stages, rejects, atomic reruns, dry run, entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from apps.batch.exceptions import ModelMismatch, SettingsError, SourceError
from apps.batch.output import read_json, read_monitoring, read_output
from apps.batch.runner import run_partition
from apps.batch.schema import OUTPUT_TABLE, REJECTS_TABLE, part_key
from apps.batch.service import backfill
from apps.batch.settings import BatchSettings, partition_range, yesterday_utc
from apps.batch.sources import SampleSource, write_input_partition
from apps.batch.training import train_sample_model
from apps.features import Featurizer, HashingEmbedder, TfidfFeaturizer
from apps.storage import open_store

REPO = Path(__file__).resolve().parents[2]
PARTITION = "20250115"


@pytest.fixture(scope="module")
def featurizer() -> Featurizer:
    return Featurizer(HashingEmbedder(), TfidfFeaturizer.reference())


@pytest.fixture(scope="module")
def registry(tmp_path_factory, featurizer) -> str:
    uri = f"file://{tmp_path_factory.mktemp('models')}"
    train_sample_model(uri, featurizer=featurizer, rows=600, classifier="logistic_regression")
    return uri


def make_settings(tmp_path: Path, registry: str, **kw) -> BatchSettings:
    base = {"data_uri": f"file://{tmp_path}/data", "model_registry_uri": registry, "source": "sample",
            "sample_rows": 300, "embedder": "hashing", "metrics_port": 0}
    return BatchSettings(**{**base, **kw})


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_a_sample_run_scores_every_row_or_rejects_it_with_a_reason(tmp_path, registry, featurizer) -> None:
    settings = make_settings(tmp_path, registry)
    record = run_partition(settings, PARTITION, featurizer=lambda: featurizer)
    assert record.status == "succeeded" and record.rows_in == 300
    assert record.rows_out + record.rows_rejected == 300 and record.rows_rejected >= 1
    store = open_store(settings.data_uri)
    out = read_output(store, PARTITION)
    assert out.num_rows == record.rows_out
    assert set(out.column("model_version").to_pylist()) == {record.model_version}
    scores = out.column("privacy_score").to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    # The sample is ~35% privacy cases; a working model flags roughly that share.
    assert 0.2 < out.column("is_privacy_case").to_numpy().mean() < 0.5
    rejects = read_output(store, PARTITION, REJECTS_TABLE).to_pylist()
    assert all(r["reason"] for r in rejects) and len(rejects) == record.rows_rejected
    success = read_json(store, part_key(OUTPUT_TABLE, PARTITION, "_SUCCESS"))
    assert success is not None and success["run_id"] == record.run_id
    [mon] = read_monitoring(store, PARTITION)
    assert mon["run_id"] == record.run_id and mon["rows_out"] == record.rows_out and mon["status"] == "succeeded"
    assert mon["duration_inference_s"] >= 0


def test_rerunning_a_partition_replaces_its_output(tmp_path, registry, featurizer) -> None:
    settings = make_settings(tmp_path, registry)
    first = run_partition(settings, PARTITION, featurizer=lambda: featurizer)
    second = run_partition(settings, PARTITION, featurizer=lambda: featurizer)
    store = open_store(settings.data_uri)
    out = read_output(store, PARTITION)
    ids = out.column("case_id").to_pylist()
    assert len(ids) == len(set(ids)) == second.rows_out == first.rows_out
    assert set(out.column("run_id").to_pylist()) == {second.run_id}
    assert [k for k in store.list(f"{OUTPUT_TABLE}/") if k.endswith(".parquet")] == [part_key(OUTPUT_TABLE, PARTITION)]
    assert [m["run_id"] for m in read_monitoring(store)] == [first.run_id, second.run_id]  # the log keeps both


def test_dry_run_runs_every_stage_and_writes_nothing(tmp_path, registry, featurizer) -> None:
    settings = make_settings(tmp_path, registry, dry_run=True)
    before = tree(tmp_path)
    record = run_partition(settings, PARTITION, featurizer=lambda: featurizer)
    assert record.dry_run and record.rows_out > 0 and record.model_version
    assert tree(tmp_path) == before


def test_precomputed_vectors_are_validated_and_missing_ones_computed(tmp_path, registry, featurizer) -> None:
    settings = make_settings(tmp_path, registry, source="parquet")
    store = open_store(settings.data_uri)
    table = SampleSource(rows=400, seed=3, featurizer=featurizer, invalid_ratio=0.05).read(PARTITION)
    # Drop the vectors of the first 10 rows: the pipeline computes them from the text.
    feats = table.column("features").combine_chunks()
    mask = np.zeros(400, bool)
    mask[:10] = True
    keep = pa.array(~mask)
    vectors = pa.compute.if_else(keep, feats, pa.nulls(400, feats.type))
    write_input_partition(store, PARTITION, table.set_column(3, "features", vectors))
    record = run_partition(settings, PARTITION, featurizer=lambda: featurizer)
    reasons = [r["reason"] for r in read_output(store, PARTITION, REJECTS_TABLE).to_pylist()]
    assert any("NaN" in r for r in reasons) and any("embedding block L2 norm" in r for r in reasons)
    assert any("no case_text" in r for r in reasons)
    assert 1 <= record.features_computed <= 10
    assert record.rows_out + record.rows_rejected == 400


def test_a_missing_partition_fails_and_is_still_recorded(tmp_path, registry) -> None:
    settings = make_settings(tmp_path, registry, source="parquet")
    with pytest.raises(SourceError, match="PARTITION_DATE"):
        run_partition(settings, "20250301")
    [mon] = read_monitoring(open_store(settings.data_uri))
    assert mon["status"] == "failed" and "no input partition" in mon["error"]


def test_a_model_for_other_vectors_is_refused(tmp_path, featurizer) -> None:
    from apps.inference import ModelRegistry, synthetic_dataset, train

    uri = f"file://{tmp_path}/models20"
    reg = ModelRegistry(uri)
    reg.promote(reg.publish(train(synthetic_dataset(n_samples=200, n_features=20), classifier="logistic_regression")))
    with pytest.raises(ModelMismatch, match="takes 20 features"):
        run_partition(make_settings(tmp_path, uri), PARTITION, featurizer=lambda: featurizer)


def test_a_model_trained_on_another_embedder_is_refused(tmp_path, registry) -> None:
    class OtherEmbedder(HashingEmbedder):
        name = "minilm"

    other = Featurizer(OtherEmbedder(), TfidfFeaturizer.reference())
    with pytest.raises(ModelMismatch, match="different embedder"):
        run_partition(make_settings(tmp_path, registry), PARTITION, featurizer=lambda: other)


def test_settings_follow_the_contract() -> None:
    env = {"DATA_URI": "file:///d", "MODEL_REGISTRY_URI": "file:///m", "SOURCE": "sample"}
    s = BatchSettings.from_env({**env, "DRY_RUN": "true", "PARTITION_DATE": "20250101"})
    assert s.dry_run and s.partition() == "20250101" and s.partition("20250102") == "20250102"
    assert BatchSettings.from_env(env).partition() == yesterday_utc()
    with pytest.raises(SettingsError, match="PARTITION_DATE: '20251301' is not a calendar date"):
        BatchSettings.from_env({**env, "PARTITION_DATE": "20251301"})
    with pytest.raises(SettingsError, match="DRY_RUN"):
        BatchSettings.from_env({**env, "DRY_RUN": "maybe"})
    with pytest.raises(SettingsError, match="SOURCE not set"):
        BatchSettings.from_env({"DATA_URI": "file:///d", "MODEL_REGISTRY_URI": "file:///m"})
    assert partition_range("20250130", "20250202") == ["20250130", "20250131", "20250201", "20250202"]


def test_an_indexed_backfill_pod_runs_only_its_partition(tmp_path, registry, monkeypatch) -> None:
    import apps.batch.service as service

    seen: list[str] = []
    monkeypatch.setattr(service, "run_partition", lambda settings, p: seen.append(p))
    settings = make_settings(tmp_path, registry)
    backfill(settings, "20250101", "20250105", environ={"JOB_COMPLETION_INDEX": "3"})
    assert seen == ["20250104"]
    backfill(settings, "20250101", "20250102", environ={})
    assert seen == ["20250104", "20250101", "20250102"]
    with pytest.raises(SettingsError, match="expected 0..4"):
        backfill(settings, "20250101", "20250105", environ={"JOB_COMPLETION_INDEX": "5"})


def test_python_m_apps_batch_run_prints_the_monitoring_record(tmp_path, registry) -> None:
    env = {**os.environ, "DATA_URI": f"file://{tmp_path}/data", "MODEL_REGISTRY_URI": registry, "SOURCE": "sample",
           "EMBEDDER": "hashing", "SAMPLE_ROWS": "200", "PARTITION_DATE": "20250110", "LOG_LEVEL": "WARNING"}
    proc = subprocess.run([sys.executable, "-m", "apps.batch", "run"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    assert record["partition"] == "20250110" and record["status"] == "succeeded" and record["rows_in"] == 200
    bad = subprocess.run([sys.executable, "-m", "apps.batch", "run", "--partition", "2025-01-10"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "expected a date as YYYYMMDD" in bad.stderr


def test_postprocessing_rejects_unusable_scores_with_the_reason() -> None:
    from datetime import UTC, datetime

    from apps.batch.stages import Rejects, postprocess

    rejects = Rejects()
    ids = pa.array(["a", "b", "", "d"])
    out = postprocess(ids, np.arange(4), np.array([0.2, np.nan, 0.9, 1.5], np.float32), partition=PARTITION,
                      run_id="r1", model_version="v1", now=datetime.now(UTC), rejects=rejects)
    assert out.column("case_id").to_pylist() == ["a"]
    assert dict(zip(rejects.index, rejects.reason)) == {1: "score nan is outside [0, 1]", 2: "case_id is empty",
                                                        3: "score 1.5 is outside [0, 1]"}


def test_the_packed_vector_layout_reads_like_the_list_layout(tmp_path, registry, featurizer) -> None:
    store = open_store(f"file://{tmp_path}/data")
    table = SampleSource(rows=50, seed=4, featurizer=featurizer).read(PARTITION)
    write_input_partition(store, PARTITION, table, packed=True)
    from apps.batch.sources import ParquetSource

    again = ParquetSource(store).read(PARTITION)
    assert again.schema == table.schema
    from apps.batch.schema import features_matrix

    (m1, p1), (m2, p2) = features_matrix(again.column("features")), features_matrix(table.column("features"))
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(m1[p1], m2[p2])  # NaNs included: the bad rows survive the round trip


def test_the_long_running_mode_runs_a_partition_once(tmp_path, registry) -> None:
    import threading

    from apps.batch.output import partition_done
    from apps.batch.service import serve
    from apps.waiting import wait_for

    settings = make_settings(tmp_path, registry, partition_date="20250120", serve_interval_s=0.05, sample_rows=50)
    store = open_store(settings.data_uri)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(settings,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: partition_done(store, "20250120"), what="the scheduled partition", timeout=120)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(read_monitoring(store, "20250120")) == 1  # later cycles see _SUCCESS and skip



def test_a_partition_on_s3_is_written_and_replaced(tmp_path, registry, featurizer, s3_store) -> None:
    settings = make_settings(tmp_path, registry, data_uri=s3_store.uri, sample_rows=120)
    first = run_partition(settings, PARTITION, store=s3_store, featurizer=lambda: featurizer)
    second = run_partition(settings, PARTITION, store=s3_store, featurizer=lambda: featurizer)
    out = read_output(s3_store, PARTITION)
    assert out.num_rows == second.rows_out == first.rows_out
    assert set(out.column("run_id").to_pylist()) == {second.run_id}
    success = read_json(s3_store, part_key(OUTPUT_TABLE, PARTITION, "_SUCCESS"))
    assert success is not None and success["run_id"] == second.run_id
    assert len(read_monitoring(s3_store, PARTITION)) == 2
    assert any(k.startswith(f"runs/{second.run_id}/data/") for k in s3_store.list("runs/"))
