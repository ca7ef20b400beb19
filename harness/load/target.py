"""Targets for a gate run on this machine: the inference API as its container or as a local process.

Both run the API as `env`'s rendered Deployment would (api_settings_env). The container (the CI
path) comes from the containers harness's stack; the process runs the same entry point,
`python -m apps.api`, on 127.0.0.1 for a quick loop without Docker.

    >>> with container_stack() as stack, api_container(stack, env=env, faults=Faults()) as api:
    ...     run_gate(env=env, profile="mixed", target_url=api.url, out_dir=Path(".artifacts/load"))
    >>> uri = local_registry(Path("/tmp/models"), env=env)
    >>> with api_process(env=env, registry_uri=uri) as url:
    ...     run_gate(env=env, profile="single", target_url=url, out_dir=Path(".artifacts/load"), target="process")
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, Field

from apps.waiting import wait_for
from argocd.render import render_environment
from environments.model import Environment
from harness.containers.runners import API_COMMAND, API_PORT, Running
from harness.containers.seed import seed_registry
from harness.containers.stack import ContainerStack, container_stack
from harness.containers.workloads import workload_shape
from harness.clusters.nodes import simulated_cloud
from harness.load.errors import TargetError
from harness.ports import free_port
from harness.processes import stop_process

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunningApi:
    """An API under test: its base URL and a way to read its recent logs (for failure reports)."""

    url: str
    logs: Callable[[], str]


class Faults(BaseModel):
    """The API's test-only fault injection; refused where the environment does not allow it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0, ge=0)
    error_ratio: float = Field(default=0, ge=0, le=1)

    @property
    def any(self) -> bool:
        return bool(self.latency_ms or self.error_ratio)

    def api_env(self, env: Environment) -> dict[str, str]:
        """The API's env variables for these faults (empty when there are none)."""
        if not self.any:
            return {}
        api = env.apps.inference_api
        if env.production or not api.fault_injection_allowed:
            raise TargetError(
                f"environment {env.name!r} does not allow fault injection "
                "(apps.inference_api.fault_injection_allowed is false, and always so in production)"
            )
        return {
            "FAULT_INJECTION_ALLOWED": "true",
            "FAULT_LATENCY_MS": f"{self.latency_ms:g}",
            "FAULT_ERROR_RATIO": f"{self.error_ratio:g}",
        }


# What a harness-run API changes in its Deployment's environment: where it listens, the registry
# it serves from (the harness's store), a quieter log under load, and the test's faults.
HARNESS_SETTINGS = ("PORT", "MODEL_REGISTRY_URI", "LOG_LEVEL", "FAULT_INJECTION_ALLOWED", "FAULT_LATENCY_MS",
                    "FAULT_ERROR_RATIO")


def api_settings_env(env: Environment, *, registry_uri: str, port: int, faults: Faults | None = None) -> dict[str, str]:
    """The API's environment as `env`'s rendered Deployment gives it (its ConfigMap and its own
    variables: harness/containers/workloads.py), with HARNESS_SETTINGS set for this run. A cloud
    environment renders with stand-in stack outputs: none of them reaches the API's variables."""
    fault_env = (faults or Faults()).api_env(env)  # refused first: the cheapest, clearest error
    tree = render_environment(env, cloud=simulated_cloud(env))
    deployed = workload_shape(tree, API_COMMAND, image="ml-inference-api").environment
    return {**deployed, "PORT": str(port), "MODEL_REGISTRY_URI": registry_uri, "LOG_LEVEL": "WARNING", **fault_env}


@contextlib.contextmanager
def api_container(stack: ContainerStack, *, env: Environment, registry_uri: str | None = None,
                  faults: Faults | None = None) -> Iterator[Running]:
    """The API image of `stack` configured as `env`'s Deployment (with these faults), serving from
    `registry_uri` (default: a registry of the stack's store seeded with the env's classifier)."""
    registry_uri = registry_uri or stack.registry(classifier=env.api_model.classifier)
    with stack.api(environment=api_settings_env(env, registry_uri=registry_uri, port=API_PORT, faults=faults)) as api:
        yield api


@contextlib.contextmanager
def api_in_container(*, env: Environment, faults: Faults) -> Iterator[str]:
    """For the command line: the whole stack and one API container; yields the API's URL."""
    with container_stack() as stack, api_container(stack, env=env, faults=faults) as api:
        if not api.url:
            raise TargetError("the API container published no URL")
        yield api.url


def local_registry(root: Path, *, env: Environment) -> str:
    """A file:// registry under `root` serving a seeded model of the env's classifier; its URI."""
    root.mkdir(parents=True, exist_ok=True)
    uri = f"file://{root.resolve()}"
    seed_registry(uri, classifier=env.api_model.classifier)
    return uri


@contextlib.contextmanager
def api_process(
    *, env: Environment, registry_uri: str, faults: Faults | None = None, log_path: Path | None = None
) -> Iterator[str]:
    """`python -m apps.api` on 127.0.0.1:<free port>, ready (GET /readyz 200); yields its base URL."""
    port = free_port()
    settings = api_settings_env(env, registry_uri=registry_uri, port=port, faults=faults)
    # Loopback only: nothing but this machine's load generator should reach a test API.
    child_env = {**os.environ, **settings, "HOST": "127.0.0.1"}
    log = log_path.open("wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "apps.api"], env=child_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: _ready(url, proc),
            what=f"the inference API at {url}/readyz",
            timeout=READY_TIMEOUT_S,
            transient=(httpx.TransportError,),
            describe=lambda: _describe(proc, log_path),
        )
        yield url
    finally:
        stop_process(proc, timeout=10)
        if log_path and hasattr(log, "close"):
            log.close()


def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise TargetError(f"the inference API process exited with {proc.returncode} before it was ready")
    return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200


def _describe(proc: subprocess.Popen[bytes], log_path: Path | None) -> str:
    state = "running" if proc.poll() is None else f"exited {proc.returncode}"
    tail = ""
    if log_path and log_path.is_file():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    return f"process {proc.pid} {state}; log tail:\n{tail}"
