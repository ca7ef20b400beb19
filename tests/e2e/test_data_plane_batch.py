"""The batch pipeline image runs a partition against the S3-compatible store, as the CronJob's pod would."""

from __future__ import annotations

import pytest

from apps.batch.output import read_json, read_monitoring, read_output
from apps.batch.schema import OUTPUT_TABLE, part_key
from apps.batch.training import train_sample_model
from apps.features import Featurizer, TfidfFeaturizer
from apps.features.embedder import load_embedder
from apps.storage import open_store
from harness.containers.plugin import PipelineRunner
from harness.containers.services import S3Service

pytestmark = pytest.mark.e2e
PARTITION = "20250115"


@pytest.fixture
def registry_uri(mlops_bucket: str, mlops_s3: S3Service, mlops_s3_host_env: dict[str, str]) -> str:
    """A promoted PCC model on the store, trained on the host with the features the run computes.

    The hashing embedder keeps the run to seconds; the 584-wide vector and every stage are the same.
    """
    uri = f"{mlops_bucket}/models"
    featurizer = Featurizer(load_embedder("hashing"), TfidfFeaturizer.reference())
    train_sample_model(uri, featurizer=featurizer, rows=400, endpoint_url=mlops_s3.endpoint_url)
    return uri


def test_batch_run_writes_the_partition_and_a_rerun_replaces_it(
    mlops_pipeline: PipelineRunner, mlops_bucket: str, mlops_s3: S3Service, registry_uri: str
) -> None:
    env = {"DATA_URI": f"{mlops_bucket}/data", "MODEL_REGISTRY_URI": registry_uri, "SOURCE": "sample",
           "EMBEDDER": "hashing", "SAMPLE_ROWS": "200", "TZ": "UTC", "LOG_LEVEL": "INFO"}
    command = ["python", "-m", "apps.batch", "run", "--partition", PARTITION]

    code, logs = mlops_pipeline.run(command, env=env, timeout=600)
    assert code == 0, logs
    store = open_store(env["DATA_URI"], endpoint_url=mlops_s3.endpoint_url)
    first = read_output(store, PARTITION)
    [record] = read_monitoring(store, PARTITION)
    assert record["status"] == "succeeded" and record["embedder"] == "hashing"
    assert record["rows_in"] == 200 and record["rows_out"] == first.num_rows > 0
    assert record["rows_out"] + record["rows_rejected"] == record["rows_in"]
    assert set(first.column("run_id").to_pylist()) == {record["run_id"]}

    code, logs = mlops_pipeline.run(command, env=env, timeout=600)
    assert code == 0, logs
    second = read_output(store, PARTITION)
    records = read_monitoring(store, PARTITION)
    assert len(records) == 2  # the monitoring log keeps every run
    ids = second.column("case_id").to_pylist()
    assert len(ids) == len(set(ids)) == first.num_rows  # replaced, not appended
    assert set(second.column("run_id").to_pylist()) == {records[-1]["run_id"]}
    parts = [k for k in store.list(f"{OUTPUT_TABLE}/partition={PARTITION}/") if k.endswith(".parquet")]
    assert parts == [part_key(OUTPUT_TABLE, PARTITION)]
    marker = read_json(store, part_key(OUTPUT_TABLE, PARTITION, "_SUCCESS"))
    assert marker is not None and marker["run_id"] == records[-1]["run_id"]
