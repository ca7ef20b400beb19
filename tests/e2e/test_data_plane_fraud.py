"""The four fraud stages as containers of the pipeline image on one Docker volume (the seed's shared
FlashBlade claim): every raw transaction reaches exactly one result, also when a stage container is
SIGKILLed mid-run and started again."""

from __future__ import annotations

import json

import pytest

from apps.waiting import wait_for
from harness.containers.plugin import PipelineRunner
from harness.containers.runners import Running
from harness.containers.workloads import shape_for

pytestmark = pytest.mark.e2e
# Where the stages' Deployments mount the shared claim (the rest of their environment comes from
# the rendered tree too: harness/containers/runners.py).
STAGE = shape_for(["python", "-m", "apps.fraud", "data-gather"], image="ml-pipeline")
QUEUE_ROOT = STAGE.environment["QUEUE_ROOT"] if STAGE else "/mnt/flashblade"
TRANSACTIONS = 600

# Read in a container on the volume (the host does not see inside a Docker volume): queue depths
# and the transaction ids of every result, through the app's own queue reader.
_PEEK = f"""
import json
from pathlib import Path
from apps.fraud.file_queue import FileQueue
from apps.fraud.records import decode_records
from apps.fraud.stages import FEATURES, RAW, RESULTS, TRAINING
root = Path({QUEUE_ROOT!r})
queues = {{n: FileQueue(root, n, lease_s=30, max_attempts=3) for n in (RAW, FEATURES, TRAINING, RESULTS)}}
ids = [r["transaction_id"] for _, p in queues[RESULTS].pending_payloads() for r in decode_records(p)]
print(json.dumps({{"depth": {{n: q.depth() for n, q in queues.items()}}, "results": ids}}))
"""


def peek(reader: Running) -> dict:
    result = reader.container.exec(["python", "-c", _PEEK])
    if result.exit_code != 0:
        raise AssertionError(f"queue reader failed: {result.output.decode(errors='replace')[-2000:]}")
    return json.loads(result.output.decode().strip().splitlines()[-1])


def test_every_transaction_reaches_exactly_one_result_across_a_killed_stage(
    mlops_pipeline: PipelineRunner, mlops_bucket: str
) -> None:
    volume = mlops_pipeline.volume(QUEUE_ROOT)
    mounts = {volume: QUEUE_ROOT}
    # What differs from the Deployments: short leases (so the killed stage's work comes back
    # quickly), CPU (no GPU here), the test's registry, a fast poll and a fixed seed.
    env = {"LEASE_S": "3", "DEVICE": "cpu", "MODEL_REGISTRY_URI": f"{mlops_bucket}/fraud-models",
           "POLL_INTERVAL_S": "0.1", "SEED": "7"}
    stage_env = {
        # A steady trickle, so the kill below lands while work is in flight.
        "data-gather": {"GATHER_LIMIT": str(TRANSACTIONS), "GATHER_RATE": "40"},
        "preprocessing": {"TRAINING_SAMPLE_RATE": "1.0"},
        "model-build": {"MIN_TRAINING_ITEMS": "150", "MIN_AUC": "0.0", "TRAINING_SAMPLE_RATE": "1.0"},
        "inference": {"RELOAD_INTERVAL_S": "0.5"},
    }
    reader = mlops_pipeline.start(["sleep", "3600"], env={}, volumes=mounts)
    stages = {name: mlops_pipeline.start(["python", "-m", "apps.fraud", name], env={**env, **extra}, volumes=mounts)
              for name, extra in stage_env.items()}

    def describe() -> str:
        return json.dumps(peek(reader)["depth"]) + "\n" + "\n".join(
            f"--- {n}\n{s.logs(15)}" for n, s in stages.items())

    def preprocessing_busy() -> dict | None:
        state = peek(reader)
        depth = state["depth"]
        produced = depth["features-ready"]["pending"] + depth["training-queue"]["pending"] + len(state["results"])
        return state if produced > 0 else None

    wait_for(preprocessing_busy, what="preprocessing to publish its first items", timeout=300, interval=0.5,
             describe=describe)
    victim = stages["preprocessing"]
    victim.kill()  # SIGKILL: no graceful shutdown, a lease may be held
    raw = peek(reader)["depth"]["raw-transactions"]
    assert raw["pending"] + raw["processing"] > 0 or stages["data-gather"].running(), \
        "the kill came after preprocessing had nothing left to do"
    victim.restart()

    def finished() -> dict | None:
        state = peek(reader)
        return state if len(state["results"]) >= TRANSACTIONS else None

    state = wait_for(finished, what=f"{TRANSACTIONS} results", timeout=420, interval=1.0, describe=describe)
    ids = state["results"]
    assert len(ids) == len(set(ids)) == TRANSACTIONS  # none lost, none twice
    for queue in ("raw-transactions", "features-ready"):
        depth = state["depth"][queue]
        assert depth["pending"] == depth["processing"] == depth["committing"] == depth["dead-letter"] == 0, depth
