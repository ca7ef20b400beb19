"""Retention of run data: successful runs lose data but keep config, failed runs go entirely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apps.cleanup.exceptions import SettingsError
from apps.cleanup.retention import apply_retention
from apps.cleanup.settings import CleanupSettings
from apps.storage import open_store

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def add_run(store, run_id: str, status: str | None, age: timedelta) -> None:
    when = (NOW - age).isoformat()
    store.put_bytes(f"runs/{run_id}/config.json", json.dumps({"partition": "20250101", "started_at": when}).encode())
    if status:
        field = "started_at" if status == "running" else "finished_at"
        store.put_bytes(f"runs/{run_id}/status.json", json.dumps({"status": status, field: when}).encode())
    store.put_bytes(f"runs/{run_id}/data/input.parquet", b"rows")
    store.put_bytes(f"runs/{run_id}/data/rejects.parquet", b"rows")


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(f"file://{tmp_path}/data")
    add_run(s, "ok-old", "succeeded", timedelta(days=8))
    add_run(s, "ok-new", "succeeded", timedelta(days=6))
    add_run(s, "failed-old", "failed", timedelta(hours=13))
    add_run(s, "failed-new", "failed", timedelta(hours=11))
    add_run(s, "died", "running", timedelta(days=1))
    add_run(s, "still-running", "running", timedelta(minutes=30))
    s.put_bytes("runs/mystery/data/x.parquet", b"?")
    s.put_bytes("pcc_inference_output/partition=20250101/part-00000.parquet", b"output is not run data")
    return s


def test_retention_follows_the_seed_policy(store) -> None:
    report = apply_retention(store, success_hours=168, failed_hours=12, dry_run=False, now=NOW)
    actions = {d.run_id: d.action for d in report.decisions}
    assert actions == {"ok-old": "data-removed", "ok-new": "kept", "failed-old": "run-removed", "failed-new": "kept",
                       "died": "run-removed", "still-running": "kept", "mystery": "skipped"}
    keys = set(store.list())
    assert {"runs/ok-old/config.json", "runs/ok-old/status.json"} <= keys
    assert not any(k.startswith(("runs/ok-old/data/", "runs/failed-old/", "runs/died/")) for k in keys)
    assert "runs/ok-new/data/input.parquet" in keys and "runs/failed-new/data/input.parquet" in keys
    assert "runs/mystery/data/x.parquet" in keys
    assert "pcc_inference_output/partition=20250101/part-00000.parquet" in keys
    logged = json.loads(store.get_bytes(report.log_key))
    assert sorted(k for d in logged["decisions"] for k in d["removed_keys"]) == sorted(report.removed_keys)
    assert len(report.removed_keys) == 2 + 4 + 4
    again = apply_retention(store, success_hours=168, failed_hours=12, dry_run=False, now=NOW)
    assert again.removed_keys == []  # idempotent: config of old successes is kept, nothing left to remove


def test_dry_run_reports_and_removes_nothing(store) -> None:
    before = store.list()
    report = apply_retention(store, success_hours=168, failed_hours=12, dry_run=True, now=NOW)
    assert len(report.removed_keys) == 10 and report.log_key is None
    assert store.list() == before


def test_retention_hours_are_configurable(store) -> None:
    report = apply_retention(store, success_hours=24 * 5, failed_hours=24, dry_run=True, now=NOW)
    actions = {d.run_id: d.action for d in report.decisions}
    assert actions["ok-new"] == "data-removed" and actions["failed-old"] == "kept" and actions["died"] == "run-removed"


def test_a_real_batch_run_is_aged_out(tmp_path: Path) -> None:
    from apps.batch.runner import run_partition
    from apps.batch.settings import BatchSettings
    from apps.batch.training import train_sample_model
    from apps.features import Featurizer, HashingEmbedder, TfidfFeaturizer

    featurizer = Featurizer(HashingEmbedder(), TfidfFeaturizer.reference())
    registry = f"file://{tmp_path}/models"
    train_sample_model(registry, featurizer=featurizer, rows=300)
    settings = BatchSettings(data_uri=f"file://{tmp_path}/data", model_registry_uri=registry, source="sample",
                             sample_rows=50, metrics_port=0)
    record = run_partition(settings, "20250101", featurizer=lambda: featurizer)
    store = open_store(settings.data_uri)
    report = apply_retention(store, success_hours=168, failed_hours=12, dry_run=False,
                             now=datetime.now(UTC) + timedelta(days=8))
    assert [d.action for d in report.decisions] == ["data-removed"]
    assert sorted(store.list(f"runs/{record.run_id}/")) == [f"runs/{record.run_id}/config.json",
                                                            f"runs/{record.run_id}/status.json"]


def test_settings_and_entry_point(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SUCCESS_RETENTION_HOURS, FAILED_RETENTION_HOURS not set"):
        CleanupSettings.from_env({"DATA_URI": "file:///x"})
    env = {**os.environ, "DATA_URI": f"file://{tmp_path}/data", "SUCCESS_RETENTION_HOURS": "168",
           "FAILED_RETENTION_HOURS": "0"}
    bad = subprocess.run([sys.executable, "-m", "apps.cleanup"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1 and "FAILED_RETENTION_HOURS=" in bad.stderr
    add_run(open_store(f"file://{tmp_path}/data"), "failed-old", "failed", datetime.now(UTC) - NOW + timedelta(hours=13))
    ok = subprocess.run([sys.executable, "-m", "apps.cleanup"], cwd=REPO, env={**env, "FAILED_RETENTION_HOURS": "12"},
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    events = [json.loads(line) for line in ok.stdout.splitlines() if line.startswith("{")]
    assert any(e["event"] == "retention_decision" and e["action"] == "run-removed" for e in events)
    assert open_store(f"file://{tmp_path}/data").list("runs/failed-old/") == []



def test_retention_on_an_s3_store(s3_store) -> None:
    add_run(s3_store, "ok-old", "succeeded", timedelta(days=8))
    add_run(s3_store, "failed-old", "failed", timedelta(hours=13))
    report = apply_retention(s3_store, success_hours=168, failed_hours=12, dry_run=False, now=NOW)
    assert {d.run_id: d.action for d in report.decisions} == {"ok-old": "data-removed", "failed-old": "run-removed"}
    assert sorted(k for k in s3_store.list("runs/")) == ["runs/ok-old/config.json", "runs/ok-old/status.json"]
    assert s3_store.exists(report.log_key)
