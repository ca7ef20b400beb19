"""Fraud pipeline benchmark: items/s through all stages with N workers per stage on one folder,
and the latency each item picks up on the way (data-gather -> score), p50/p99.

    .venv/bin/python tests/benchmarks/bench_fraud.py --items 20000 --workers 2

Phase 1 (throughput): the stages are started and ready (model loaded), then data-gather emits
--items transactions flat out; items/s = items / (last score time - first gather time).
Phase 2 (latency): data-gather at --rate items/s for --seconds; per-item latency = scored_at -
created_at. Stages are real processes (`python -m apps.fraud <stage>`) on one volume.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from apps.fraud.file_queue import FileQueue  # noqa: E402
from apps.fraud.records import FEATURE_NAMES, Score, decode_records  # noqa: E402
from apps.fraud.stages import RAW, RESULTS, featurize, synthetic_transactions  # noqa: E402
from apps.waiting import wait_for  # noqa: E402


def publish_model(registry_uri: str) -> str:
    from apps.inference import Dataset, ModelRegistry, train

    txs = synthetic_transactions(4000, np.random.default_rng(0))
    ds = Dataset.from_arrays(featurize(txs), [int(bool(t.is_fraud)) for t in txs], features=list(FEATURE_NAMES))
    reg = ModelRegistry(registry_uri)
    version = reg.publish(train(ds, classifier="random_forest", seed=0))
    reg.promote(version)
    return version


def start(stage: str, env: dict[str, str], logs: Path, i: int) -> subprocess.Popen:
    with open(logs / f"{stage}-{i}.log", "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "apps.fraud", stage], cwd=REPO, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)


def stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def scores(root: Path) -> list[Score]:
    q = FileQueue(root, RESULTS, lease_s=60, max_attempts=3)
    return [Score.model_validate(r) for _, p in q.pending_payloads() for r in decode_records(p)]


def run_phase(root: Path, env: dict[str, str], workers: int, gather_env: dict[str, str], expect: int,
              timeout: float) -> tuple[list[Score], float]:
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = [start(s, env, logs, i) for s in ("preprocessing", "inference") for i in range(workers)]
    try:
        wait_for(lambda: sum("model_loaded" in (logs / f"inference-{i}.log").read_text() for i in range(workers))
                 == workers, what="inference workers to load the model", timeout=120)
        t0 = time.time()
        procs.append(start("data-gather", {**env, **gather_env}, logs, 0))
        gatherer = procs[-1]
        raw = FileQueue(root, RAW, lease_s=60, max_attempts=3)
        features = FileQueue(root, "features-ready", lease_s=60, max_attempts=3)

        def drained() -> bool:
            # Cheap check first (file counts); decode the results only once everything upstream is empty.
            if gatherer.poll() is None or any(sum(x.depth()[s] for s in ("pending", "processing", "committing"))
                                              for x in (raw, features)):
                return False
            return len(scores(root)) >= expect

        wait_for(drained, what=f"{expect} scores", timeout=timeout, interval=0.1)
        return scores(root), t0
    finally:
        stop_all(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=500.0, help="phase 2 gather rate (items/s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="phase 2 duration")
    ap.add_argument("--batch-size", type=int, default=16, help="messages a worker claims at once")
    ap.add_argument("--records-per-message", type=int, default=64)
    ap.add_argument("--poll-interval", type=float, default=0.2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fraud-") as tmp:
        base = Path(tmp)
        results = {}
        for phase in ("throughput", "latency"):
            root = base / phase
            root.mkdir()
            version = publish_model(f"file://{root}/models")
            env = {**os.environ, "QUEUE_ROOT": str(root), "LEASE_S": "30", "MAX_ATTEMPTS": "3", "METRICS_PORT": "0",
                   "DEVICE": "cpu", "TRAINING_SAMPLE_RATE": "0", "BATCH_SIZE": str(args.batch_size),
                   "RECORDS_PER_MESSAGE": str(args.records_per_message),
                   "POLL_INTERVAL_S": str(args.poll_interval), "LOG_LEVEL": "WARNING"}
            env["LOG_LEVEL"] = "INFO"  # the bench reads model_loaded from the logs
            if phase == "throughput":
                n = args.items
                got, t0 = run_phase(root, env, args.workers, {"GATHER_RATE": "0", "GATHER_LIMIT": str(n)}, n, 600)
            else:
                n = int(args.rate * args.seconds)
                got, t0 = run_phase(root, env, args.workers, {"GATHER_RATE": str(args.rate), "GATHER_LIMIT": str(n)},
                                    n, 600)
            ids = [s.transaction_id for s in got]
            assert len(ids) == len(set(ids)) == n, f"expected {n} unique scores, got {len(ids)} ({len(set(ids))} unique)"
            first = min(s.created_at for s in got)
            last = max(s.scored_at for s in got)
            lat = np.array([s.scored_at - s.created_at for s in got]) * 1000
            results[phase] = {"items": n, "seconds": round(last - first, 3), "items_per_s": round(n / (last - first), 1),
                              "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
                              "latency_ms_p99": round(float(np.percentile(lat, 99)), 1), "model_version": version,
                              "workers_per_stage": args.workers, "startup_to_first_item_s": round(first - t0, 2)}
            print(json.dumps({phase: results[phase]}), flush=True)
        print(json.dumps({"target_items_per_s": 2000, "throughput_met": results["throughput"]["items_per_s"] >= 2000,
                          "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
