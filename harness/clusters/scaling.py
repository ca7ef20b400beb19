"""The API's HPA under load, for real: Locust through the Service's node port drives CPU past the
HPA's target, and the Deployment's replicas are followed until they come back to the floor.

    >>> run = scale_under_load(client, env, out_dir=Path(".artifacts/load/scale"))   # doctest: +SKIP
    >>> run.peak_replicas, run.seconds_to_scale_up, run.report.passed
    (4, 41.3, True)

The gate is the environment's `scale` profile (thresholds judged on the very run that made the
HPA scale); while it runs, the PodDisruptionBudget is watched too: scaling never leaves fewer
ready replicas than it promises.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Service

from apps.api import workload as api_workload
from apps.waiting import wait_for
from environments.model import Environment, LoadProfileName
from harness.clusters.errors import DeployError
from harness.clusters.fields import service_ports
from harness.clusters.localstore import node_address
from harness.load.runner import GateReport, run_gate

PROFILE: LoadProfileName = "scale"


@dataclass(frozen=True)
class Sample:
    at_s: float  # since the load started
    replicas: int  # what the HPA asked for (the Deployment's spec)
    ready: int


@dataclass
class ScalingRun:
    floor: int
    ceiling: int
    report: GateReport
    samples: list[Sample] = field(default_factory=list)
    seconds_to_scale_down: float | None = None  # after the load ended

    @property
    def peak_replicas(self) -> int:
        return max((s.replicas for s in self.samples), default=self.floor)

    @property
    def seconds_to_scale_up(self) -> float | None:
        return next((s.at_s for s in self.samples if s.replicas > self.floor), None)

    @property
    def fewest_ready(self) -> int:
        return min((s.ready for s in self.samples), default=0)


def node_port_url(client: Client, env: Environment) -> str:
    """http://<node>:<port> of the API's Service (`expose: node_port`)."""
    ns = api_workload.namespace(env)
    service = client.get(Service, api_workload.SERVICE, namespace=ns)
    port = next((p.nodePort for p in service_ports(service) if p.nodePort), None)
    if port is None:
        raise DeployError(ref=f"Service {ns}/{api_workload.SERVICE}", path="-", status=0,
                          reason="has no node port: set apps.inference_api.expose: node_port in the environment")
    return f"http://{node_address(client)}:{port}"


def scale_under_load(client: Client, env: Environment, *, out_dir: Path, settle_timeout: float = 300) -> ScalingRun:
    """Run the `scale` gate against the API's node port, sampling replicas every 2 s; then wait
    (up to the scale-down window plus `settle_timeout`) for the floor again."""
    scaling = env.apps.inference_api.autoscaling
    ns = api_workload.namespace(env)
    samples: list[Sample] = []
    started = time.monotonic()
    done = threading.Event()

    def sample() -> Sample:
        dep = client.get(Deployment, api_workload.DEPLOYMENT, namespace=ns)
        return Sample(time.monotonic() - started, dep.spec.replicas or 0, (dep.status.readyReplicas or 0) if dep.status else 0)

    def follow() -> None:
        while not done.wait(2.0):
            samples.append(sample())

    follower = threading.Thread(target=follow, name="hpa-follower", daemon=True)
    follower.start()
    try:
        report = run_gate(env=env, profile=PROFILE, target_url=node_port_url(client, env), out_dir=out_dir,
                          target="kind-node-port", allow_remote=True, compare_baseline=False)
    finally:
        done.set()
        follower.join(timeout=10)
    run = ScalingRun(floor=scaling.min_replicas, ceiling=scaling.max_replicas, report=report, samples=samples)
    load_ended = time.monotonic()

    def at_floor() -> Sample | None:
        now = sample()
        run.samples.append(now)
        return now if now.replicas == scaling.min_replicas and now.ready == scaling.min_replicas else None

    wait_for(at_floor, what=f"{api_workload.DEPLOYMENT} back at {scaling.min_replicas} replicas",
             timeout=scaling.scale_down_stabilization_s + settle_timeout, interval=2.0,
             describe=lambda: f"last samples: {run.samples[-5:]}")
    run.seconds_to_scale_down = time.monotonic() - load_ended
    return run
