"""`mlops up [ENV]`: the main job on a local environment, every step real.

    $ mlops up local

1. the apps' images are built (only when their inputs changed) on the local Docker engine;
2. a local cluster shaped like the environment's node groups is created (or reused);
3. `pulumi up` of the environment's stack (harness/stack.py: the toolchain's Pulumi CLI, a
   file backend under <cache root>/stacks): Argo CD's namespace, CRDs and
   configuration, the AppProject and root application, and the publish step that commits
   the rendered tree to the environment's GitOps repo (a local bare repository);
4. Argo CD (its controllers as local processes, the repo served by `git daemon` on
   127.0.0.1) syncs that commit: every Application must be Synced and Healthy;
5. the data plane answers: the inference API container serves a model from the S3-compatible
   store, and one batch partition runs through the pipeline container; its monitoring record
   is read back.

The cluster and the stack are kept (a second run changes nothing that did not change;
`mlops harness cluster delete --env ENV` removes the cluster); containers and Argo CD's
processes stop on the way out. Cloud environments are deployed by `pulumi up`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import typer
from lightkube import Client
from lightkube.resources.core_v1 import Pod
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from apps.api import workload as api_workload
from apps.batch import workload as batch_workload
from apps.bootstrap import workload as bootstrap_workload
from apps.batch.output import read_monitoring
from apps.batch.settings import yesterday_utc
from apps.cli_errors import fail
from apps.k8s import PART_OF
from apps.storage import open_store
from apps.inference import ModelRegistry
from apps.waiting import WaitTimeoutError, wait_for
from argocd.errors import GitOpsError
from argocd.publish import mask
from argocd.render import RenderedTree, render_environment
from environments import Environment, EnvironmentFileError, load_environment
from harness.argocd_local import upstream
from harness.argocd_local.applications import AppStatus, wait_applications
from harness.argocd_local.errors import ArgoLocalError
from harness.argocd_local.loop import application_names, gitops_loop, prepare_cluster, wait_argocd_running
from harness.clusters.deploy import trigger_cronjob, wait_deployment_available, wait_job_complete
from harness.clusters.diagnostics import dump
from harness.clusters.errors import ClusterError
from harness.clusters.kube import client_for
from harness.clusters.localstore import deploy_store, host_credentials, seed_store
from harness.clusters.nodes import for_simulated_nodes
from harness.clusters.probes import run_script, script_job
from harness.clusters.providers import LOCAL_PROVIDERS, KindProvider, KwokProvider
from harness.clusters.providers.kind import upstream_node_image_present
from harness.clusters.providers.kwok import TOOLS as KWOK_TOOLS
from harness.containers.build import ensure_images
from harness.containers.registry import local_registry, push_local
from harness.containers.engine import start_engine
from harness.containers.errors import ContainersError
from harness.containers.runners import run_to_completion
from harness.containers.services import S3Service
from harness.containers.settings import ContainersSettings, default_settings
from harness.containers.stack import ContainerStack, container_stack
from harness.load.target import api_container
from harness.stack import GIT_PORT, LocalSite, StackError, run
from harness.toolchain import ToolchainError, ensure_tools
from infra.errors import InfraError

console = Console()
FAILURES = (EnvironmentFileError, GitOpsError, ClusterError, ContainersError, WaitTimeoutError, ToolchainError,
            InfraError, ArgoLocalError, StackError, httpx.HTTPError)


def tools_for(provider: str) -> list[str]:
    """The pinned tools the main job runs: the cluster's, MinIO, Pulumi and Argo CD."""
    cluster = KWOK_TOOLS if provider == "kwok" else ["kind"]
    return [*cluster, "minio", "pulumi", upstream.TOOL, *(["registry"] if provider == "kind" else [])]


class StepFailed(RuntimeError):
    """A step of the main job failed; the message says which and why."""


@dataclass(frozen=True)
class StepResult:
    """One step of the main job as it ended: `detail` is plain text (what it did, or why it failed)."""

    name: str
    ok: bool
    detail: str
    seconds: float


@contextmanager
def step(summary: list[StepResult], name: str) -> Iterator[list[str]]:
    """Time one step and record its StepResult; the step sets its detail in the yielded `out[0]`."""
    started, outcome = time.monotonic(), ["done"]
    console.rule(f"[bold]{name}")
    try:
        yield outcome
    except FAILURES as e:
        summary.append(StepResult(name, ok=False, detail=str(e), seconds=time.monotonic() - started))
        raise StepFailed(f"{name}: {e}") from e
    summary.append(StepResult(name, ok=True, detail=outcome[0], seconds=time.monotonic() - started))


def summary_table(results: list[StepResult], *, title: str) -> Table:
    """The presenter of the main job's results: the one place that knows about colours."""
    table = Table("step", "outcome", "time", title=title)
    for r in results:
        outcome = f"[green]ok[/] {escape(r.detail)}" if r.ok else f"[red]failed[/] {escape(r.detail)}"
        table.add_row(escape(r.name), outcome, f"{r.seconds:.1f}s")
    return table


def up(env: Environment, *, provider: str, cluster: str | None = None,
       settings: ContainersSettings | None = None, state: Path | None = None,
       git_port: int = GIT_PORT) -> list[StepResult]:
    """Run every step; their results, in order. `cluster` defaults to mlops-<env>, kept afterwards, as
    is the stack's state under `state` (default: harness.stack.stacks_dir()).

    The containers are one session of their own (`settings`, default: this process's), removed
    on the way out; another session's containers, a test run's for instance, are left alone.
    """
    summary: list[StepResult] = []
    in_cluster = provider == "kind"  # real pods: Argo CD, the store and the apps run in the cluster
    if not in_cluster:
        env = for_simulated_nodes(env)
    site = LocalSite.of(env, cluster=cluster, state=state, git_port=git_port, in_cluster=in_cluster)
    with contextlib.ExitStack() as resources:
        with step(summary, "tools") as out:
            # Built here (cold: many minutes, shown as they build) so each later step times only itself.
            tools = ensure_tools(tools_for(provider), console=console)
            out[0] = f"{len(tools)} pinned tools"

        with step(summary, "images") as out:
            if in_cluster:  # the images alone: the store and the apps run as pods, pulled from the registry
                client_docker, build_settings = start_engine(settings).client, settings or default_settings()
                images = ensure_images(client_docker, settings=build_settings, log=print)
                pushed = push_local(client_docker, images.by_repository(), settings=build_settings, log=print)
                env = pushed.deployed(env)
                site.record_images(env)
                for name, push in sorted(pushed.images.items()):
                    console.print(f"{pushed.reference(name)}{'' if push.pushed else ' (already there)'}",
                                  highlight=False)
                out[0] = f"{len(pushed.images)} images, {pushed.count()} pushed to {pushed.target.host}"
            else:  # the store and the data plane as containers beside the simulated cluster
                stack = resources.enter_context(container_stack(settings))
                images = stack.images
                out[0] = f"{len(images.images)} images"

        with step(summary, f"{provider} cluster") as out:
            def log(line: str) -> None:
                console.print(line, highlight=False, markup=False)

            cluster_provider = KindProvider(registry=local_registry(), log=log) if in_cluster else KwokProvider()
            info = cluster_provider.create(site.cluster, env=env)
            client = client_for(info.kubeconfig)
            tree = render_environment(env, repo_url=site.clone_url)
            prepare_cluster(client, tree, volumes=not in_cluster)  # simulated nodes provision no volumes
            out[0] = f"{info.name} ready"
            if isinstance(cluster_provider, KindProvider):  # in_cluster
                console.print(f"git server for Argo CD: {cluster_provider.serve_git(site.cluster, site.repo.parent)}",
                              highlight=False)
                minio = images.tag("minio").rsplit(":", 1)[0]
                store = deploy_store(client, env, image=pushed.reference(minio), tree=tree)
                # What an operator brings: input data. The models come from the bootstrap Jobs.
                partition = seed_store(env, store)
                out[0] += f"; store at {env.storage.endpoint_url} with input {partition}"
            console.print(f"export KUBECONFIG={info.kubeconfig}", highlight=False)

        with step(summary, "pulumi up") as out:
            pulumi_stack = site.stack(info.kubeconfig, env=env)
            result = run("up", lambda: pulumi_stack.up(
                refresh=True, on_output=lambda line: console.print(line, highlight=False, markup=False)))
            commit = result.outputs["gitops_commit"].value
            changes = ", ".join(f"{n} {k}" for k, n in sorted((result.summary.resource_changes or {}).items()))
            out[0] = f"stack {env.name}: {changes}; GitOps commit {commit[:12]}"
            console.print(f"{len(tree)} files at {mask(env.gitops.repo_url)} [{env.gitops.branch}] {env.gitops.path}",
                          highlight=False)

        if in_cluster:
            _in_cluster_steps(summary, client, env=env, tree=tree, commit=commit, store=store)
            return summary

        with step(summary, "argo cd sync") as out, gitops_loop(
            info.kubeconfig, env=env, workdir=site.state / "argocd", repo=site.repo, git_port=git_port,
            argocd_installed=True,
        ) as loop:
            statuses = loop.wait_apps(application_names(env, tree), commit, timeout=300)
            print_applications(statuses, title="Argo CD")
            for name, reasons in sorted(loop.explained.items()):
                # Argo CD's verdict stands; the simulated cluster states why (harness/argocd_local/simulation.py).
                console.print(f"{name} is not Healthy on simulated nodes: {'; '.join(reasons)}", highlight=False)
            deployments = [o for o in tree.app_objects() if o.kind == "Deployment"]
            for dep in deployments:
                wait_deployment_available(client, dep.name, dep.namespace or "default", timeout=180)
            synced = sum(1 for a in statuses.values() if a.sync == "Synced")
            healthy = sum(1 for a in statuses.values() if a.health == "Healthy")
            explained = f" ({len(loop.explained)} not, for reasons of the simulated nodes, shown above)" if loop.explained else ""
            out[0] = (f"{synced}/{len(statuses)} Applications Synced, {healthy} Healthy{explained}, "
                      f"{len(deployments)} Deployments available")

        with step(summary, "inference API") as out:
            with api_container(stack, env=env) as api:
                model = httpx.get(f"{api.url}/v1/model", timeout=10).raise_for_status().json()
                features = [0.5] * len(model["features"])
                answer = httpx.post(f"{api.url}/v1/predict", json={"features": features}, timeout=10)
                body = answer.raise_for_status().json()
            out[0] = f"label {body['label']} from model {body['model_version']}"
            console.print(f"POST /v1/predict -> {answer.status_code} {json.dumps(body)}", highlight=False)

        with step(summary, "batch pipeline") as out:
            record = run_batch_partition(stack, env=env)
            out[0] = (f"partition {record['partition']}: {record['rows_in']} in, {record['rows_out']} out, "
                      f"{record['rows_rejected']} rejected, {record['status']}")
    return summary


def print_applications(statuses: dict[str, AppStatus], *, title: str) -> None:
    table = Table("application", "sync", "health", "revision", title=title)
    for name, app in sorted(statuses.items()):
        table.add_row(name, app.sync, app.health, (app.revision or "")[:12])
    console.print(table)


def _in_cluster_steps(summary: list[StepResult], client: Client, *, env: Environment, tree: RenderedTree,
                      commit: str, store: S3Service) -> None:
    """Argo CD in the cluster syncs the commit; the API answers through its Service; the batch
    CronJob's Job runs a partition: every step on real pods."""
    namespace = env.gitops.argocd_namespace

    def argocd_state() -> str:
        return dump(client, [namespace])

    with step(summary, "argo cd sync") as out:
        wait_argocd_running(client, namespace)
        statuses = wait_applications(client, namespace, names=application_names(env, tree), revision=commit,
                                     timeout=600, extra=argocd_state)
        print_applications(statuses, title="Argo CD (in the cluster)")
        deployments = [o for o in tree.app_objects() if o.kind == "Deployment"]
        for dep in deployments:
            wait_deployment_available(client, dep.name, dep.namespace or "default", timeout=300)
        pods = [p for ns in {o.namespace for o in tree.app_objects() if o.namespace}
                for p in client.list(Pod, namespace=ns, labels={"app.kubernetes.io/part-of": PART_OF})
                if p.status and p.status.phase == "Running"]
        models = wait_for(lambda: _first_models(env, store), what="every model family's bootstrap Job to promote "
                          "its first model", timeout=600, interval=2.0,
                          describe=lambda: dump(client, [bootstrap_workload.NAMESPACE]))
        out[0] = (f"{len(statuses)}/{len(statuses)} Applications Synced and Healthy at {commit[:12]}, "
                  f"{len(deployments)} Deployments available, {len(pods)} pods Running; models "
                  + ", ".join(f"{family} {version}" for family, version in models.items()))

    with step(summary, "inference API") as out:
        ns = api_workload.namespace(env)
        url = f"http://{api_workload.SERVICE}.{ns}.svc:{env.apps.inference_api.port}"
        job = script_job(name=f"up-predict-{secrets.token_hex(3)}", namespace=ns, image=env.image(api_workload.IMAGE),
                         script=PREDICT_SCRIPT, env={"API_URL": url})
        body = json.loads(run_script(client, job, timeout=180).strip().splitlines()[-1])
        out[0] = f"label {body['label']} from model {body['model_version']}, through {api_workload.SERVICE} from a pod"
        console.print(f"POST {url}/v1/predict -> {json.dumps(body)}", highlight=False)

    with step(summary, "batch pipeline") as out:
        ns = batch_workload.namespace(env)
        job_name = f"up-pcc-{secrets.token_hex(3)}"
        trigger_cronjob(client, batch_workload.CRON_JOB, ns, job_name=job_name)
        wait_job_complete(client, job_name, ns, timeout=600)
        partition = yesterday_utc()
        with host_credentials(store):
            records = read_monitoring(open_store(env.storage.data_uri, endpoint_url=store.endpoint_url), partition)
        record = records[-1]  # the newest: this Job's
        console.print_json(json.dumps(record, default=str))
        out[0] = (f"partition {record['partition']} by the CronJob's Job {job_name}: {record['rows_in']} in, "
                  f"{record['rows_out']} out, {record['rows_rejected']} rejected, {record['status']}")


def _first_models(env: Environment, store: S3Service) -> dict[str, str] | None:
    """Each family's active version once every family has one (its bootstrap Job's), else None."""
    with host_credentials(store):
        active = {f: ModelRegistry(env.model_registry_uri(f), endpoint_url=store.endpoint_url).active_version()
                  for f in env.families_in_use}
    return {f: v for f, v in active.items() if v} if all(active.values()) else None


# Seed 001's request through the Service, from inside the cluster (a restricted pod), stdlib only.
PREDICT_SCRIPT = """\
import json, os, urllib.request
url = os.environ["API_URL"]
features = [0.5] * len(json.load(urllib.request.urlopen(url + "/v1/model", timeout=10))["features"])
request = urllib.request.Request(url + "/v1/predict", data=json.dumps({"features": features}).encode(),
                                 headers={"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(request, timeout=10))))
"""


def run_batch_partition(stack: ContainerStack, *, env: Environment) -> dict[str, object]:
    """The daily job's work for yesterday's partition, in the pipeline image, against the store."""
    data = stack.s3.create_bucket(f"up-data-{stack.settings.session_id}")
    pcc_registry = f"{data}/models/pcc"
    partition = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d")
    # The CronJob's own environment comes from the rendered tree (runners); what differs here: the
    # harness's store, the sample source (no upstream data) and the embedder that needs no weights.
    container_env = {**stack.s3.container_env(), "DATA_URI": data, "MODEL_REGISTRY_URI": pcc_registry,
                     "SOURCE": "sample", "EMBEDDER": "hashing"}
    image = stack.images.tag("ml-pipeline")
    for command in (["python", "-m", "apps.batch", "train-sample"],
                    ["python", "-m", "apps.batch", "run", "--partition", partition]):
        code, logs = run_to_completion(image=image, settings=stack.settings, network=stack.network,
                                       command=command, env=container_env, timeout=600, env_name=env.name)
        if code != 0:
            raise StepFailed(f"`{' '.join(command[2:])}` exited {code}:\n{logs[-2000:]}")
    # `run` prints its monitoring record as one JSON document after its log lines.
    record: dict[str, object] = json.loads(logs[logs.index("{\n"):])
    console.print_json(data=record)
    return record


def kind_unbuildable() -> str | None:
    """Why kind cannot run here (cheap checks, nothing built), or None: Docker, and kind's node
    image present or buildable offline (debootstrap, as root)."""
    if shutil.which("docker") is None and shutil.which("dockerd") is None:
        return "no Docker here (kind's nodes are containers)"
    if upstream_node_image_present():
        return None
    if os.geteuid() != 0 or not (shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists()):
        return "kind's node image is not in Docker and building it offline needs root and debootstrap"
    return None


def command(
    env_name: str = typer.Argument("local", help="A local environment (cloud ones are deployed by `pulumi up`)."),
    provider: str = typer.Option("auto", "--provider", "-p", help="kind (real pods; its node image is built "
                                 "offline the first time) | kwok (simulated nodes shaped like the node groups) | "
                                 "auto: kind where its node image can be had, else kwok"),
    git_port: int = typer.Option(GIT_PORT, "--git-port", help="Port of the git server Argo CD clones from (127.0.0.1)."),
) -> None:
    """The main job: images, cluster, `pulumi up` of the local stack, Argo CD sync, inference and a batch run."""
    started = time.monotonic()
    try:
        env = load_environment(env_name)
        if env.aws is not None:
            raise StepFailed(f"{env.name} is a cloud environment: deploy it with `pulumi stack select {env.name} && "
                             "pulumi up` (see README); `mlops infra plan` previews it offline")
        if provider == "auto":
            why_not = kind_unbuildable()
            provider = "kwok" if why_not else "kind"
            if why_not:
                console.print(f"provider kwok: {why_not}", highlight=False)
        if provider not in LOCAL_PROVIDERS:
            raise StepFailed(f"unknown provider {provider!r}; expected auto or one of {', '.join(LOCAL_PROVIDERS)}")
        summary = up(env, provider=provider, git_port=git_port)
    except (StepFailed, EnvironmentFileError) as e:
        fail(str(e))
    console.print(summary_table(summary, title=f"mlops up {env.name} ({time.monotonic() - started:.0f}s)"))
    console.print(f"cluster kept: mlops harness cluster delete --env {env.name} --provider {provider}")
