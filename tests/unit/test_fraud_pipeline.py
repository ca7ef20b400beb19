"""The fraud stages end to end on a folder, crash safety under a real SIGKILL, poison, devices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from apps.fraud.device import cuda_available, resolve_device
from apps.fraud.exceptions import SettingsError
from apps.fraud.file_queue import FileQueue
from apps.fraud.records import FeatureRow, Score, decode_records, encode_records
from apps.fraud.runner import run_stage
from apps.fraud.settings import FraudSettings
from apps.fraud.stages import FEATURES, RAW, RESULTS, TRAINING, synthetic_transactions
from apps.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def settings(root: Path, **kw) -> FraudSettings:
    base = {"queue_root": root, "lease_s": 3, "max_attempts": 3, "metrics_port": 0, "poll_interval_s": 0.05,
            "device": "cpu", "seed": 7}
    return FraudSettings(**{**base, **kw})


def q(root: Path, name: str) -> FileQueue:
    return FileQueue(root, name, lease_s=3, max_attempts=3)


@contextmanager
def stages(s: FraudSettings, *names: str) -> Iterator[threading.Event]:
    stop = threading.Event()
    threads = [threading.Thread(target=run_stage, args=(n, s), kwargs={"stop": stop}, daemon=True) for n in names]
    for t in threads:
        t.start()
    try:
        yield stop
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def records(root: Path, name: str) -> list[dict]:
    return [r for _, p in q(root, name).pending_payloads() for r in decode_records(p)]  # type: ignore[misc]


def describe(root: Path) -> str:
    return "; ".join(f"{n}: {q(root, n).depth()}" for n in (RAW, FEATURES, TRAINING, RESULTS))


def test_items_flow_through_all_four_stages_exactly_once(tmp_path: Path) -> None:
    s = settings(tmp_path, gather_limit=400, gather_rate=0, training_sample_rate=1.0, min_training_items=150,
                 min_auc=0.0, reload_interval_s=0.2)
    with stages(s, "data-gather", "preprocessing", "preprocessing", "model-build", "inference", "inference"):
        wait_for(lambda: len(records(tmp_path, RESULTS)) >= 400, what="400 scores", timeout=240,
                 describe=lambda: describe(tmp_path))
    scores = [Score.model_validate(r) for r in records(tmp_path, RESULTS)]
    assert len(scores) == 400 and len({sc.transaction_id for sc in scores}) == 400
    assert all(0 <= sc.fraud_probability <= 1 and sc.device == "cpu" for sc in scores)
    assert q(tmp_path, FEATURES).depth()["pending"] == 0 and q(tmp_path, RAW).depth()["pending"] == 0
    from apps.inference import ModelRegistry

    assert {sc.model_version for sc in scores} <= set(ModelRegistry(s.registry_uri).versions())


def test_poison_records_end_in_dead_letter_with_the_reason(tmp_path: Path) -> None:
    raw = q(tmp_path, RAW)
    good = synthetic_transactions(5, np.random.default_rng(1))
    raw.put(encode_records(good[:2]), item_id="message-a")
    raw.put(b"{not json", item_id="poison-message")
    bad = json.loads(encode_records(good[2:3]))["records"][0]
    bad.update(transaction_id="poison-record", amount=-5)
    mixed = json.loads(encode_records(good[3:]))
    mixed["records"].insert(1, bad)
    raw.put(json.dumps(mixed).encode(), item_id="message-b")
    with stages(settings(tmp_path, training_sample_rate=0.0), "preprocessing"):
        wait_for(lambda: raw.depth()["dead-letter"] == 2 and len(records(tmp_path, FEATURES)) == 4,
                 what="2 dead letters and 4 feature rows", timeout=60, describe=lambda: describe(tmp_path))
    notes = {(n["item_id"], n.get("record_index")): n for n in raw.dead_letters()}
    whole = notes[("poison-message", None)]
    assert whole["attempts"] == 1 and "not a message of Transaction records" in whole["error"]
    record = notes[("message-b", 1)]
    assert "amount" in record["error"] and record["record"]["transaction_id"] == "poison-record"
    assert sorted(r["transaction_id"] for r in records(tmp_path, FEATURES)) == sorted(
        t.transaction_id for t in good[:2] + good[3:])


# The worker that gets killed: the real consumer loop and queue, with a stage that is stuck
# inside its item (so the SIGKILL lands mid-item, with the lease held and being renewed).
_STUCK_WORKER = """
import sys, threading
from pathlib import Path
from apps.fraud.file_queue import FileQueue
from apps.fraud.worker import run_consumer
root = Path(sys.argv[1])
class Stuck:
    name = "preprocessing"
    def ready(self):
        return True
    def process(self, items):
        (root / "in-process").write_text(items[0].item_id)
        threading.Event().wait()
run_consumer(Stuck(), FileQueue(root, "raw-transactions", lease_s=2, max_attempts=3), batch_size=1,
             poll_interval_s=0.05, stop=threading.Event())
"""


def test_sigkill_mid_item_then_processed_exactly_once_after_the_lease(tmp_path: Path) -> None:
    raw = FileQueue(tmp_path, RAW, lease_s=2, max_attempts=3)
    [tx] = synthetic_transactions(1, np.random.default_rng(3))
    raw.put(encode_records([tx]), item_id=tx.transaction_id)
    victim = subprocess.Popen([sys.executable, "-c", _STUCK_WORKER, str(tmp_path)], cwd=REPO)
    try:
        wait_for(lambda: (tmp_path / "in-process").exists(), what="the worker to be inside the item", timeout=60)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert raw.depth()["processing"] == 1 and raw.depth()["pending"] == 0  # held by a dead worker

    env = {**os.environ, "QUEUE_ROOT": str(tmp_path), "LEASE_S": "2", "MAX_ATTEMPTS": "3", "METRICS_PORT": "0",
           "DEVICE": "cpu", "TRAINING_SAMPLE_RATE": "0", "POLL_INTERVAL_S": "0.05"}
    log_path = tmp_path / "rescuer.log"
    with open(log_path, "wb") as log_file:
        rescuer = subprocess.Popen([sys.executable, "-m", "apps.fraud", "preprocessing"], cwd=REPO, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        features = q(tmp_path, FEATURES)
        wait_for(lambda: features.depth()["pending"] == 1 and raw.depth()["processing"] == 0,
                 what="the item redone by another worker", timeout=60,
                 describe=lambda: describe(tmp_path) + "\n" + log_path.read_text()[-2000:])
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(timeout=30)
    [(item_id, payload)] = features.pending_payloads()
    assert item_id == tx.transaction_id
    [row] = decode_records(payload)
    assert FeatureRow.model_validate(row).transaction_id == tx.transaction_id
    assert raw.depth() == {"pending": 0, "processing": 0, "committing": 0, "staged": 0, "dead-letter": 0}
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(e["event"] == "queue_reaped" and e["requeued"] == 1 for e in events)


@pytest.mark.skipif(cuda_available(), reason="this machine has a GPU: the CPU fallback cannot be observed")
def test_gpu_requested_without_one_falls_back_to_cpu_with_a_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        choice = resolve_device("gpu", stage="inference")
    assert choice.device == "cpu" and choice.providers == ["CPUExecutionProvider"]
    assert any(e["event"] == "gpu_unavailable_cpu_fallback" and e["log_level"] == "warning" for e in logs)
    raw = q(tmp_path, RAW)
    [tx] = synthetic_transactions(1, np.random.default_rng(4))
    raw.put(encode_records([tx]), item_id=tx.transaction_id)
    with stages(settings(tmp_path, device="gpu"), "preprocessing"):
        wait_for(lambda: q(tmp_path, FEATURES).depth()["pending"] == 1, what="one feature row", timeout=60)
    [row] = records(tmp_path, FEATURES)
    assert FeatureRow.model_validate(row).device == "cpu"


def test_a_gpu_is_used_when_present_and_asked_for() -> None:
    assert resolve_device("auto", stage="x", gpu_present=True).device == "cuda"
    assert resolve_device("cpu", stage="x", gpu_present=True).device == "cpu"
    with pytest.raises(ValueError, match="auto, cpu or gpu"):
        resolve_device("tpu", stage="x")  # type: ignore[arg-type]


def test_settings_name_the_missing_or_bad_variable() -> None:
    with pytest.raises(SettingsError, match="LEASE_S, MAX_ATTEMPTS not set"):
        FraudSettings.from_env({"QUEUE_ROOT": "/tmp/x"})
    with pytest.raises(SettingsError, match="DEVICE='tpu'"):
        FraudSettings.from_env({"LEASE_S": "5", "MAX_ATTEMPTS": "3", "DEVICE": "tpu"})
    s = FraudSettings.from_env({"LEASE_S": "5", "MAX_ATTEMPTS": "3", "QUEUE_ROOT": "/mnt/fb"})
    assert s.registry_uri == "file:///mnt/fb/models" and s.metrics_port == 8080


def test_python_m_refuses_an_unknown_stage() -> None:
    proc = subprocess.run([sys.executable, "-m", "apps.fraud", "scoring"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "data-gather|preprocessing|inference|model-build" in proc.stderr


def test_a_stage_serves_metrics_and_health_over_http(tmp_path: Path) -> None:
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    raw = q(tmp_path, RAW)
    raw.put(encode_records(synthetic_transactions(3, np.random.default_rng(5))))
    env = {**os.environ, "QUEUE_ROOT": str(tmp_path), "LEASE_S": "3", "MAX_ATTEMPTS": "3", "METRICS_PORT": str(port),
           "DEVICE": "cpu", "POLL_INTERVAL_S": "0.05"}
    proc = subprocess.Popen([sys.executable, "-m", "apps.fraud", "preprocessing"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def scraped() -> str | None:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            return text if 'fraud_items_processed_total{stage="preprocessing"} 3.0' in text else None

        text = wait_for(scraped, what="3 processed items in /metrics", timeout=60, transient=(httpx.HTTPError,))
        assert 'fraud_queue_depth{queue="features-ready",state="pending"}' in text
        assert "fraud_stage_item_seconds_count" in text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
