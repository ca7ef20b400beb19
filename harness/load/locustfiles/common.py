"""What every profile shares: the plan, payloads from the feature schema, the shape, the cap.

Imported only inside a Locust process (importing locust monkey-patches the interpreter).
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, constant, constant_throughput, events
from locust.env import Environment

from harness.load.plan import PLAN_ENV, LoadPlan

# A pool of rows per user, cycled: generating rows must not cost the load generator more
# CPU than the requests themselves on a machine it shares with the server.
ROW_POOL = 256


def read_plan() -> LoadPlan:
    path = os.environ.get(PLAN_ENV)
    if not path:
        raise RuntimeError(f"{PLAN_ENV} is not set: run this locustfile through `mlops harness load run`")
    return LoadPlan.read(Path(path))


PLAN = read_plan()
_user_ids = itertools.count()
_malformed_left = itertools.count(PLAN.malformed_requests, -1)
_requests_seen = itertools.count(1)
_stopping = False


def take_malformed() -> bool:
    """True for the first `plan.malformed_requests` requests of the run, across all users."""
    return next(_malformed_left) > 0


class InferenceUser(FastHttpUser):
    """Base of the profiles' users: rows drawn from the schema, paced at `user_rps` when set."""

    abstract = True
    # Paced: each user aims at user_rps (a slow answer is followed at once, never made up for).
    # Unpaced: a closed loop, the next request leaves when the last one answers.
    wait_time = constant_throughput(PLAN.user_rps) if PLAN.user_rps else constant(0)

    def on_start(self) -> None:
        rng = random.Random(PLAN.seed * 1_000_003 + next(_user_ids))
        self._rows = itertools.cycle(PLAN.schema_.rows(rng, ROW_POOL))

    def next_row(self) -> list[float]:
        return next(self._rows)

    def single_body(self) -> dict[str, Any]:
        row = self.next_row()
        return {"features": row[:-1] if take_malformed() else row}

    def batch_body(self) -> dict[str, Any]:
        rows = [self.next_row() for _ in range(PLAN.batch_size)]
        if take_malformed():
            rows[0] = rows[0][:-1]
        return {"instances": rows}

    def predict(self) -> None:
        self.client.post("/v1/predict", json=self.single_body())

    def predict_batch(self) -> None:
        self.client.post("/v1/predict/batch", json=self.batch_body())

    def read_model(self) -> None:
        self.client.get("/v1/model")


class RampHoldRampDown(LoadTestShape):
    """Ramp up to `users` at `spawn_rate`, hold, ramp down at the same rate, stop at `duration_s`."""

    abstract = True  # each profile file declares its own concrete shape

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= PLAN.duration_s:
            return None
        ramp_s = PLAN.users / PLAN.spawn_rate
        # Leave at most a quarter of a short run to the ramp down so the hold dominates.
        down_at = PLAN.duration_s - min(ramp_s, PLAN.duration_s / 4)
        if elapsed < down_at:
            return PLAN.users, PLAN.spawn_rate
        return 1, PLAN.spawn_rate


@events.request.add_listener
def _request_cap(context: Any = None, **_: Any) -> None:
    """Stop the run once `max_requests` have been made: a bound on traffic, not only on time."""
    global _stopping
    if next(_requests_seen) >= PLAN.max_requests and not _stopping:
        _stopping = True
        environment = _ENVIRONMENT[0]
        if environment is not None and environment.runner is not None:
            # Spawned: stop() kills the users, and this listener runs inside one of them.
            gevent.spawn(environment.runner.stop)


_ENVIRONMENT: list[Environment | None] = [None]


@events.init.add_listener
def _keep_environment(environment: Environment, **_: Any) -> None:
    _ENVIRONMENT[0] = environment
