"""The `local` tree on kind: the pipeline in real pods from the very manifests Argo CD syncs.

The rendered tree is applied in sync-wave order to a kind cluster shaped like `local` (a CPU and a
GPU worker; the GPUs are advertised, no device plugin hands them out, so the GPU variants take
their CPU fallback). The object store the environment names (`minio.ml-storage.svc`) runs as a
pod; the host reaches it through a NodePort to seed models and inputs and to read what the apps
wrote. Every check a user would make runs inside the cluster, from restricted probe pods:
predictions through the API's Service, the batch CronJob's Job, the fraud stages on their claim,
the cleanup CronJob's Job. The harness brings only what an operator brings (the input partition):
each model family's first model comes from its bootstrap Job, as in the cloud. A failure prints
events, object status and pod logs in the report.
"""

from __future__ import annotations

import json
import secrets
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

import numpy as np
import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Namespace, Pod
from lightkube.resources.discovery_v1 import EndpointSlice

from apps.api import workload as api_workload
from apps.batch.output import read_monitoring, read_output
from apps.bootstrap import workload as bootstrap_workload
from apps.batch.settings import yesterday_utc
from apps.fraud import workload as fraud_workload
from apps.fraud.model_build import build_model
from apps.fraud.records import FeatureRow
from apps.fraud.settings import FraudSettings
from apps.fraud.stages import featurize, synthetic_transactions
from apps.inference import ContractMismatch, ModelRegistry, synthetic_dataset, train
from apps.inference.registry import ACTIVE_FILE, ONNX_FILE, ActivePointer
from apps.storage import ObjectStore, open_store
from apps.waiting import wait_for
from argocd import catalog
from argocd.render import RenderedObject, RenderedTree, render_environment
from environments import load_environment
from environments.model import Environment, ModelFamily
from harness.clusters.deploy import Applied, apply_tree, trigger_cronjob, wait_deployment_available, wait_job_complete
from harness.clusters.diagnostics import dump
from harness.clusters.fields import labels_of, name_of
from harness.clusters.kube import client_for
from harness.clusters.localstore import deploy_store, seed_store, store_address
from harness.clusters.probes import PROBE_UID, job_logs, run_script, script_job
from harness.clusters.providers.base import ClusterInfo
from harness.clusters.providers.kind import KindProvider
from harness.containers.build import ImageSet
from harness.containers.registry import PushedImages
from harness.containers.services import S3Service

pytestmark = pytest.mark.e2e
SYSTEM_NAMESPACES = ["kube-system", "local-path-storage"]
ROLLOUT_S = 300  # image unpacking and first model loads on two shared cores


@dataclass
class Deployed:
    env: Environment
    client: Client
    tree: RenderedTree
    applied: Applied
    store: S3Service
    api_version: str  # the seed-001-shaped model the inference family's bootstrap Job promoted

    @property
    def namespaces(self) -> list[str]:
        return [*self.applied.namespaces, store_address(self.env)[1], *SYSTEM_NAMESPACES]

    def registry(self, family: ModelFamily) -> ModelRegistry:
        return ModelRegistry(self.env.model_registry_uri(family), endpoint_url=self.store.endpoint_url)

    def data_store(self) -> ObjectStore:
        return open_store(self.env.storage.data_uri, endpoint_url=self.store.endpoint_url)

    def diagnostics(self) -> str:
        return dump(self.client, self.namespaces)


_probe_names = count(1)


def probe(deployed: Deployed, script: str, *, namespace: str, image: str | None = None, timeout: float = 180,
          **job: object) -> str:
    """Run `script` in a restricted pod of `namespace` (the pipeline image by default); its output."""
    name = f"probe-{next(_probe_names)}-{secrets.token_hex(3)}"  # never a finished Job of an earlier run
    manifest = script_job(name=name, namespace=namespace, image=image or deployed.env.image(fraud_workload.IMAGE),
                          script=textwrap.dedent(script), **job)  # type: ignore[arg-type]
    return run_script(deployed.client, manifest, timeout=timeout)


@pytest.fixture(scope="module")
def host_s3(kind_cluster: ClusterInfo) -> Iterator[pytest.MonkeyPatch]:
    """boto3 on the host reads the store's keys from the environment: set for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def deployed(kind_cluster: ClusterInfo, kind_images: PushedImages, mlops_images: ImageSet,
             host_s3: pytest.MonkeyPatch) -> Deployed:
    env = kind_images.deployed(load_environment("local"))  # its app images from the registry, by digest
    client = client_for(kind_cluster.kubeconfig)
    tree = render_environment(env)
    _fresh_namespaces(client, tree)
    store = deploy_store(client, env, image=kind_images.reference(mlops_images.tag("minio").rsplit(":", 1)[0]),
                         tree=tree)
    for key, value in store.host_env().items():
        host_s3.setenv(key, value)
    seed_store(env, store)  # the input partition: no model
    applied = apply_tree(client, tree)
    deployed = Deployed(env=env, client=client, tree=tree, applied=applied, store=store, api_version="")
    try:
        for job in applied.of_kind("Job"):  # each family's bootstrap, in the cluster
            wait_job_complete(client, job.name, job.namespace or "default", timeout=ROLLOUT_S)
        for dep in applied.of_kind("Deployment"):
            if dep.manifest["spec"]["replicas"]:
                wait_deployment_available(client, dep.name, dep.namespace or "default", timeout=ROLLOUT_S)
        deployed.api_version = deployed.registry("inference").active_version() or ""
        # model-build has proven it starts; left running, it would retrain the fraud family on the
        # pipeline's own rows in the middle of the fraud stages' checks.
        _scale(deployed, "model-build", fraud_workload.namespace(env), 0)
    except Exception:
        print(deployed.diagnostics())
        raise
    return deployed


def _fresh_namespaces(client: Client, tree: RenderedTree) -> None:
    """A kept cluster (--keep-cluster) still holds an earlier run's queues and Jobs: start clean."""
    names = [o.name for o in tree.app_objects() if o.kind == "Namespace"]
    present = {name_of(ns) for ns in client.list(Namespace)} & set(names)
    for name in present:
        client.delete(Namespace, name)
    wait_for(lambda: not ({name_of(ns) for ns in client.list(Namespace)} & present),
             what=f"namespaces {sorted(present)} of an earlier run deleted", timeout=ROLLOUT_S, interval=1)


@pytest.fixture(autouse=True)
def _dump_on_failure(request: pytest.FixtureRequest, deployed: Deployed) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        print(deployed.diagnostics())


def _scale(deployed: Deployed, name: str, namespace: str, replicas: int) -> None:
    deployed.client.patch(Deployment, name, {"spec": {"replicas": replicas}}, namespace=namespace)

    def settled() -> bool:
        pods = [p for p in deployed.client.list(Pod, namespace=namespace,
                                                labels={"app.kubernetes.io/component": name})]
        return len(pods) == replicas and all(p.status and p.status.phase == "Running" for p in pods)

    wait_for(settled, what=f"Deployment {namespace}/{name} at {replicas} running pods", timeout=ROLLOUT_S, interval=0.5)


def _promote(registry: ModelRegistry, version: str) -> None:
    if registry.active_version() != version:
        registry.promote(version)


# ---------------------------------------------------------------- the pods themselves

# Run inside each app container by `kubectl exec`: what its main process (PID 1) really is.
_SELF_CHECK = """
status = dict(l.split(":\\t", 1) for l in open("/proc/1/status").read().splitlines() if ":\\t" in l)
try:
    open("/written-by-the-check", "w")
    root = "writable"
except OSError as e:
    root = "errno-%d" % e.errno
print("self-check", status["Uid"].split()[0], status["CapEff"].strip(), status["NoNewPrivs"].strip(), root)
"""


# Platform add-ons run upstream images in kube-system; the checks below are about our apps.
ADDONS = {a.name for a in catalog.ADDONS}


def app_deployments(deployed: Deployed) -> list[RenderedObject]:
    return [d for d in deployed.applied.of_kind("Deployment") if d.app not in ADDONS]


def running_app_pods(deployed: Deployed) -> list[Pod]:
    return [p for ns in {d.namespace for d in app_deployments(deployed)}
            for p in deployed.client.list(Pod, namespace=ns)
            if p.status and p.status.phase == "Running" and p.metadata.labels.get("app.kubernetes.io/part-of")]


def test_every_deployment_runs_its_project_image_as_pod_security_restricted_demands(
    deployed: Deployed, kind_cluster: ClusterInfo
) -> None:
    client, env = deployed.client, deployed.env
    wanted = {d.name: d.manifest["spec"]["replicas"] for d in app_deployments(deployed)
              if d.manifest["spec"]["replicas"] and d.name != "model-build"}
    assert set(wanted) == {"ml-inference-api", "data-gather", "preprocessing-gpu", "inference-gpu"}
    for dep in app_deployments(deployed):
        if dep.name in wanted:
            assert client.get(Deployment, dep.name, namespace=dep.namespace).status.readyReplicas == wanted[dep.name]
    pods = running_app_pods(deployed)
    assert len(pods) == sum(wanted.values()), [p.metadata.name for p in pods]
    assert {c.image for p in pods for c in p.spec.containers} == {env.image(api_workload.IMAGE),
                                                                  env.image(fraud_workload.IMAGE)}
    for ns in {str(p.metadata.namespace) for p in pods}:
        labels = labels_of(client.get(Namespace, ns))
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", ns
    provider = KindProvider()
    for pod in pods:
        assert all(s.ready and s.restartCount == 0 for s in pod.status.containerStatuses), pod.status.containerStatuses
        # Not only admitted as restricted: the working process runs unprivileged on a read-only root.
        out = provider.kubectl(kind_cluster.name, "exec", "-n", str(pod.metadata.namespace), name_of(pod), "--",
                               "python", "-c", _SELF_CHECK)
        # kubectl's own notices may come with the output: the check's line is the one it marks.
        [line] = [line for line in out.splitlines() if line.startswith("self-check ")] or [out]
        assert line.split()[1:] == [str(PROBE_UID), "0000000000000000", "1", "errno-30"], (pod.metadata.name, out)


# ---------------------------------------------------------------- the inference API through its Service

SEED_001_REQUEST = {"features": list(range(1, 21))}  # seed 001's curl to /predict-single


def _service_url(env: Environment) -> str:
    api = env.apps.inference_api
    return f"http://{api_workload.SERVICE}.{api_workload.namespace(env)}.svc:{api.port}"


# From a pod in the cluster, through the Service's name (CoreDNS) and virtual IP (kube-proxy).
_CALL_SERVICE = """
import json, os, urllib.error, urllib.request
url = os.environ["URL"]
def call(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()[:300]
answers = [call(path, json.loads(os.environ["BODY"])) for path in ["/predict-single", "/v1/predict"] * int(os.environ["ROUNDS"])]
print(json.dumps(answers))
"""


def call_service(deployed: Deployed, *, rounds: int = 1) -> list[tuple[int, dict]]:
    out = probe(deployed, _CALL_SERVICE, namespace=api_workload.namespace(deployed.env),
                env={"URL": _service_url(deployed.env), "BODY": json.dumps(SEED_001_REQUEST), "ROUNDS": str(rounds)})
    return [(int(status), body) for status, body in json.loads(out.strip().splitlines()[-1])]


def test_every_app_pod_pulled_its_image_from_the_registry_by_the_digest_the_push_reported(
    deployed: Deployed, kind_images: PushedImages
) -> None:
    pods = running_app_pods(deployed)
    assert pods
    for pod in pods:
        for spec, status in zip(pod.spec.containers, pod.status.containerStatuses or [], strict=True):
            name = spec.image.removeprefix(f"{kind_images.target.host}/").split("@")[0]
            assert spec.image == kind_images.reference(name), spec.image  # what the tree names: the push's digest
            # What the node runs: the registry's content under that digest, not an image it held.
            assert status.imageID == kind_images.reference(name), (pod.metadata.name, status.imageID)
    # The kubelet's word for each app image: pulled by that reference now, or "already present" from
    # an earlier pull on this session's cluster (the main job's tests deploy the same images first).
    namespaces = {str(p.metadata.namespace) for p in pods} | {bootstrap_workload.NAMESPACE}
    pulled = " ".join(e.message or "" for ns in namespaces for e in deployed.client.list(Event, namespace=ns)
                      if e.reason == "Pulled")
    for name in (api_workload.IMAGE, fraud_workload.IMAGE):
        assert kind_images.reference(name) in pulled, f"no Pulled event names {kind_images.reference(name)}"


def test_each_family_got_its_first_model_from_its_bootstrap_job(deployed: Deployed) -> None:
    """Day one as in the cloud: nothing seeded a model; each family's Job trained and promoted one
    of the family's contract, and pinned that contract in its registry."""
    env = deployed.env
    for family in env.families_in_use:
        registry = deployed.registry(family)
        active = registry.load()
        assert registry.contract() == active.schema
        declared = env.models[family].feature_names
        assert declared is None or active.schema.features == declared
        job = f"model-bootstrap-{family}"
        logs = job_logs(deployed.client, job, bootstrap_workload.NAMESPACE)
        assert "bootstrap_promoted" in logs and active.version in logs, logs[-2000:]
    assert deployed.api_version == deployed.registry("inference").active_version()


def test_a_fraud_model_from_model_build_leaves_the_apis_model_unchanged(deployed: Deployed) -> None:
    """The mixed-fleet story: model-build promoting its 17-feature model never reaches the API."""
    version = _fraud_model(deployed)  # model-build's own build_model, into the fraud family
    assert deployed.registry("fraud").active_version() == version
    ns = fraud_workload.namespace(deployed.env)

    def taken_up() -> bool:  # the fraud inference stage serves it: a reload interval has passed
        pods = deployed.client.list(Pod, namespace=ns, labels={"app.kubernetes.io/component": "inference-gpu"})
        return all(version in "".join(deployed.client.log(name_of(p), namespace=ns)) for p in pods)

    wait_for(taken_up, what=f"the fraud inference stage to load {version}", timeout=ROLLOUT_S, interval=2.0)
    answers = call_service(deployed, rounds=5)
    assert [status for status, _ in answers] == [200] * 10, answers  # no 422 from any replica
    assert {a["model_version"] for _, a in answers} == {deployed.api_version}
    assert deployed.registry("inference").active_version() == deployed.api_version


def test_a_promotion_that_breaks_the_apis_contract_is_refused(deployed: Deployed) -> None:
    registry = deployed.registry("inference")
    narrow = registry.publish(train(synthetic_dataset(n_samples=300, n_features=17, seed=3), classifier="logistic_regression"))
    with pytest.raises(ContractMismatch, match=r"takes 17 features .* contract is 20 features"):
        registry.promote(narrow)
    assert registry.active_version() == deployed.api_version


def test_the_api_answers_seed_001s_requests_through_its_service_from_inside_the_cluster(deployed: Deployed) -> None:
    _promote(deployed.registry("inference"), deployed.api_version)
    answers = call_service(deployed, rounds=5)
    assert [status for status, _ in answers] == [200] * 10, answers
    legacy, current = answers[0][1], answers[1][1]
    assert legacy["model_version"] == current["model_version"] == deployed.api_version
    assert legacy["prediction"] in (0, 1) and current["label"] in (0, 1)
    assert abs(sum(current["probabilities"]) - 1) < 1e-4


def _slice_endpoints(deployed: Deployed) -> dict[str, bool]:
    """Pod name -> ready, as the Service's EndpointSlices list them."""
    slices = deployed.client.list(EndpointSlice, namespace=api_workload.namespace(deployed.env),
                                  labels={"kubernetes.io/service-name": api_workload.SERVICE})
    return {str(e.targetRef.name): bool(e.conditions and e.conditions.ready)
            for s in slices for e in (s.endpoints or []) if e.targetRef}


def test_a_pod_whose_readiness_fails_leaves_the_service_and_rejoins_once_ready(deployed: Deployed) -> None:
    env, client = deployed.env, deployed.client
    ns = api_workload.namespace(env)
    registry = deployed.registry("inference")
    _promote(registry, deployed.api_version)
    good = deployed.api_version
    # A version whose bytes rotted in the store, activated behind the registry's back with no
    # history: the running pods refuse it and keep serving; a new pod has nothing verified to
    # serve and must not get traffic.
    bad = registry.publish(train(synthetic_dataset(seed=5), seed=5))
    key = f"versions/{bad}/{ONNX_FILE}"
    registry.store.put_bytes(key, registry.store.get_bytes(key)[:-64] + b"\0" * 64)
    pointer = ActivePointer(version=bad, history=[], updated_at=datetime.now(UTC))
    registry.store.put_bytes(ACTIVE_FILE, pointer.model_dump_json().encode())
    try:
        before = {name_of(p) for p in client.list(Pod, namespace=ns, labels={"app.kubernetes.io/name": "inference-api"})}
        victim = sorted(before)[0]
        client.delete(Pod, victim, namespace=ns)

        def newcomer_listed_unready() -> str | None:
            endpoints = _slice_endpoints(deployed)
            new = [name for name in endpoints if name not in before]
            return new[0] if new and endpoints[new[0]] is False else None

        newcomer = wait_for(newcomer_listed_unready, what="the replacement pod in the EndpointSlice, not ready",
                            timeout=ROLLOUT_S, interval=0.5, describe=lambda: str(_slice_endpoints(deployed)))
        answers = call_service(deployed, rounds=10)
        assert [status for status, _ in answers] == [200] * 20, answers  # only the ready pod got them
        assert {a["model_version"] for _, a in answers} == {good}
        assert _slice_endpoints(deployed)[newcomer] is False
        logs = "".join(client.log(newcomer, namespace=ns))
        assert bad in logs, logs[-2000:]  # it says which version it could not load
    finally:
        registry.promote(good)
    wait_for(lambda: _slice_endpoints(deployed).get(newcomer) is True, what=f"{newcomer} ready in the Service again",
             timeout=ROLLOUT_S, interval=0.5, describe=lambda: str(_slice_endpoints(deployed)))
    wait_deployment_available(client, api_workload.DEPLOYMENT, ns, timeout=ROLLOUT_S)


# ---------------------------------------------------------------- the batch CronJob

def test_the_pcc_cronjob_run_by_hand_writes_the_partition_and_its_monitoring_record(deployed: Deployed) -> None:
    from apps.batch import workload as batch_workload

    ns = batch_workload.namespace(deployed.env)
    cron = next(o for o in deployed.applied.of_kind("CronJob") if o.app == "batch-pipeline")
    partition = yesterday_utc()
    job = trigger_cronjob(deployed.client, cron.name, ns, job_name=f"pcc-by-hand-{secrets.token_hex(3)}")
    wait_job_complete(deployed.client, name_of(job), ns, timeout=ROLLOUT_S)
    store = deployed.data_store()
    [record] = [r for r in read_monitoring(store, partition) if r["status"] == "succeeded"][-1:]
    assert record["rows_in"] == 200 and record["rows_out"] + record["rows_rejected"] == 200 and record["rows_out"] > 0
    output = read_output(store, partition)
    assert output.num_rows == record["rows_out"]
    assert set(output.column("run_id").to_pylist()) == {record["run_id"]}
    logs = job_logs(deployed.client, name_of(job), ns)
    assert record["run_id"] in logs, logs[-2000:]


# ---------------------------------------------------------------- the cleanup CronJob

def test_the_cleanup_cronjob_removes_what_retention_says_and_keeps_the_rest(deployed: Deployed) -> None:
    from apps.cleanup import workload as cleanup_workload

    store, now = deployed.data_store(), datetime.now(UTC)
    cleanup = deployed.env.apps.cleanup
    ages = {"kind-ok-old": ("succeeded", timedelta(hours=cleanup.success_retention_hours + 24)),
            "kind-ok-new": ("succeeded", timedelta(hours=cleanup.success_retention_hours - 24)),
            "kind-failed-old": ("failed", timedelta(hours=cleanup.failed_retention_hours + 1)),
            "kind-failed-new": ("failed", timedelta(hours=cleanup.failed_retention_hours - 1))}
    for run_id, (status, age) in ages.items():
        when = (now - age).isoformat()
        store.put_bytes(f"runs/{run_id}/config.json", json.dumps({"partition": "20250101", "started_at": when}).encode())
        store.put_bytes(f"runs/{run_id}/status.json", json.dumps({"status": status, "finished_at": when}).encode())
        store.put_bytes(f"runs/{run_id}/data/input.parquet", b"rows")
    ns = cleanup_workload.namespace(deployed.env)
    cron = next(o for o in deployed.applied.of_kind("CronJob") if o.app == "cleanup")
    job = trigger_cronjob(deployed.client, cron.name, ns, job_name=f"cleanup-by-hand-{secrets.token_hex(3)}")
    wait_job_complete(deployed.client, name_of(job), ns, timeout=ROLLOUT_S)
    keys = set(store.list("runs/kind-"))
    assert keys == {"runs/kind-ok-old/config.json", "runs/kind-ok-old/status.json",  # data gone, record kept
                    *(f"runs/{r}/{f}" for r in ("kind-ok-new", "kind-failed-new")
                      for f in ("config.json", "status.json", "data/input.parquet"))}


# ---------------------------------------------------------------- the fraud stages on their claim

# In a pod on the claim (the node that holds it): queue depths and the transaction ids of the
# results, through the app's own queue reader.
_PEEK = f"""
import json
from collections import Counter
from pathlib import Path
from apps.fraud.file_queue import FileQueue
from apps.fraud.records import decode_records
from apps.fraud.stages import FEATURES, RAW, RESULTS, TRAINING
root = Path({fraud_workload.MOUNT!r})
queues = {{n: FileQueue(root, n, lease_s=30, max_attempts=3) for n in (RAW, FEATURES, TRAINING, RESULTS)}}
ids = Counter(r["transaction_id"] for _, p in queues[RESULTS].pending_payloads() for r in decode_records(p))
print(json.dumps({{"depth": {{n: q.depth() for n, q in queues.items()}}, "results": sum(ids.values()),
                  "unique": len(ids), "twice": [i for i, n in ids.items() if n > 1][:5]}}))
"""


def peek(deployed: Deployed) -> dict:
    env = deployed.env
    stage = next(o for o in deployed.applied.of_kind("Deployment") if o.name == "data-gather")
    pod = stage.manifest["spec"]["template"]["spec"]
    placement = {k: pod[k] for k in ("nodeSelector", "tolerations") if pod.get(k)}
    out = probe(deployed, _PEEK, namespace=fraud_workload.namespace(env), placement=placement,
                volumes=[{"name": "queue", "persistentVolumeClaim": {"claimName": fraud_workload.PVC}}],
                mounts=[{"name": "queue", "mountPath": fraud_workload.MOUNT}])
    return json.loads(out.strip().splitlines()[-1])


def _fraud_model(deployed: Deployed) -> str:
    """A fraud model on the stages' six features, published and promoted as model-build does."""
    txs = synthetic_transactions(1500, np.random.default_rng(11))
    rows = [FeatureRow(transaction_id=t.transaction_id, features=v.tolist(), is_fraud=t.is_fraud,
                       created_at=t.created_at, device="cpu") for t, v in zip(txs, featurize(txs), strict=True)]
    settings = FraudSettings(lease_s=10, max_attempts=3, min_auc=0.0, model_registry_uri=deployed.env.model_registry_uri("fraud"),
                             s3_endpoint_url=deployed.store.endpoint_url)
    version = build_model(settings, rows)
    assert version is not None
    return version


class LogFollower:
    """Follows a pod's log in a thread until the pod's container ends (bounded by max_s)."""

    def __init__(self, client: Client, pod: str, namespace: str) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._follow, args=(client, pod, namespace), daemon=True)
        self._thread.start()

    def _follow(self, client: Client, pod: str, namespace: str) -> None:
        for line in client.log(pod, namespace=namespace, follow=True, since=1):
            self.lines.append(line)

    def wait(self, timeout: float) -> list[str]:
        self._thread.join(timeout)
        return self.lines


def test_every_transaction_is_scored_exactly_once_across_a_deleted_stage_pod(deployed: Deployed) -> None:
    env, client = deployed.env, deployed.client
    ns = fraud_workload.namespace(env)
    version = _fraud_model(deployed)

    def scoring() -> dict | None:
        state = peek(deployed)
        return state if state["results"] > 0 else None

    wait_for(scoring, what=f"inference to score with {version}", timeout=ROLLOUT_S, interval=1.0,
             describe=lambda: json.dumps(peek(deployed)))
    # Mid-run: transactions keep arriving while the preprocessing pod is killed (no grace period).
    [victim] = client.list(Pod, namespace=ns, labels={"app.kubernetes.io/component": "preprocessing-gpu"})
    [gather] = client.list(Pod, namespace=ns, labels={"app.kubernetes.io/component": "data-gather"})
    scored_before = peek(deployed)["results"]
    client.delete(Pod, name_of(victim), namespace=ns, grace_period=0)
    assert gather.status.phase == "Running"  # transactions keep coming while the stage is gone
    wait_deployment_available(client, "preprocessing-gpu", ns, timeout=ROLLOUT_S)
    wait_for(lambda: peek(deployed)["results"] > scored_before + 100, what="scoring to go on after the kill",
             timeout=ROLLOUT_S, interval=1.0, describe=lambda: json.dumps(peek(deployed)))
    # Stop the source and learn how many it sent (its last words, as it shuts down).
    [gather] = client.list(Pod, namespace=ns, labels={"app.kubernetes.io/component": "data-gather"})
    assert (gather.status.containerStatuses or [])[0].restartCount == 0  # one process: its count is the whole input
    follower = LogFollower(client, name_of(gather), ns)
    _scale(deployed, "data-gather", ns, 0)
    stopped = [json.loads(line) for line in follower.wait(60) if "data_gather_stopped" in line]
    assert stopped, follower.lines[-20:]
    sent = stopped[-1]["sent"]

    def finished() -> dict | None:
        state = peek(deployed)
        return state if state["results"] >= sent else None

    state = wait_for(finished, what=f"{sent} results", timeout=ROLLOUT_S, interval=2.0,
                     describe=lambda: json.dumps(peek(deployed)))
    assert state["results"] == state["unique"] == sent, state  # none lost, none twice
    for queue in ("raw-transactions", "features-ready"):
        depth = state["depth"][queue]
        assert depth["pending"] == depth["processing"] == depth["committing"] == depth["dead-letter"] == 0, depth
    # The GPU variants ran on a node with no GPU driver: they said so and scored on the CPU.
    for pod in client.list(Pod, namespace=ns, labels={"app.kubernetes.io/component": "inference-gpu"}):
        logs = "".join(client.log(name_of(pod), namespace=ns))
        assert "gpu_unavailable_cpu_fallback" in logs, logs[-2000:]
