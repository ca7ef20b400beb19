"""What the rendered workloads do, checked against the environment that drives them."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from apps import k8s
from apps.addons import charts
from apps.api import workload as api
from apps.batch import workload as batch
from apps.cleanup import workload as cleanup
from apps.fraud import workload as fraud
from argocd.errors import RenderError
from argocd.render import RenderedTree, service_accounts
from environments import load_environment
from tests.manifests.conftest import ENVS, SAMPLE_CLOUD, env_with, render

pytestmark = pytest.mark.manifests


def objects(tree: RenderedTree, kind: str, app: str | None = None) -> dict[str, dict]:
    return {o.name: o.manifest for o in tree.objects if o.kind == kind and (app is None or o.app == app)}


def pod_spec(manifest: dict) -> dict:
    if manifest["kind"] == "CronJob":
        return manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return manifest["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", ENVS)
def test_api_scaling_follows_the_environment(name: str, trees: dict[str, RenderedTree]) -> None:
    scaling = load_environment(name).apps.inference_api.autoscaling
    hpa = objects(trees[name], "HorizontalPodAutoscaler")[api.DEPLOYMENT]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling.min_replicas, scaling.max_replicas)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": scaling.cpu_utilization, "memory": scaling.memory_utilization}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == scaling.scale_down_stabilization_s
    app = objects(trees[name], "Application")[f"{name}-{api.APP}"]
    assert {
        "group": "apps",
        "kind": "Deployment",
        "name": api.DEPLOYMENT,
        "namespace": api.namespace(load_environment(name)),
        "jsonPointers": ["/spec/replicas"],
    } in app["spec"]["ignoreDifferences"]


def test_api_exposure_per_environment(trees: dict[str, RenderedTree]) -> None:
    assert api.LOAD_BALANCER in objects(trees["staging"], "Service")
    assert api.LOAD_BALANCER not in objects(trees["local"], "Service")
    assert not objects(trees["staging"], "Ingress")
    # prod as seed 001: the NLB Service on port 80 to the API's port, and the ALB Ingress, both.
    lb = objects(trees["prod"], "Service")[api.LOAD_BALANCER]
    assert lb["spec"]["type"] == "LoadBalancer"
    assert lb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
    assert lb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    [port] = lb["spec"]["ports"]
    container = pod_spec(objects(trees["prod"], "Deployment")[api.DEPLOYMENT])["containers"][0]
    assert port["port"] == 80
    assert {"name": port["targetPort"], "containerPort": load_environment("prod").apps.inference_api.port,
            "protocol": "TCP"} in container["ports"]
    ingress = objects(trees["prod"], "Ingress")[api.INGRESS]
    assert ingress["spec"]["rules"][0]["host"] == load_environment("prod").apps.inference_api.ingress_host
    assert ingress["spec"]["ingressClassName"] == "alb"
    # Either way in keeps the client's or the load balancer's address: the policy admits any
    # source on the API port, where a cluster-only API admits the cluster's namespaces.
    for name, source in (("prod", {"ipBlock": {"cidr": "0.0.0.0/0"}}), ("dev", {"namespaceSelector": {}})):
        policy = objects(trees[name], "NetworkPolicy", api.APP)[f"{api.APP}-allow"]["spec"]
        assert policy["ingress"][0]["from"] == [source], name
    assert objects(trees["prod"], "ResourceQuota", api.APP)[f"{api.APP}-quota"]["spec"]["hard"][
        "services.loadbalancers"] == "1"
    svc = objects(trees["local"], "Service")[api.SERVICE]["spec"]
    # Locally the host reaches the API through a node port; the cloud keeps it cluster-internal.
    assert svc["type"] == "NodePort" and svc["ports"][0]["port"] == load_environment("local").apps.inference_api.port
    assert objects(trees["local"], "ResourceQuota")["inference-api-quota"]["spec"]["hard"]["services.nodeports"] == "1"
    assert objects(trees["dev"], "Service")[api.SERVICE]["spec"]["type"] == "ClusterIP"
    with pytest.raises(ValueError, match="node_port is for local clusters"):
        env_with("staging", apps={"inference_api": {"expose": "node_port"}})


@pytest.mark.parametrize("name", ENVS)
def test_resources_come_from_the_sizing_strategy(name: str, trees: dict[str, RenderedTree]) -> None:
    env = load_environment(name)
    container = pod_spec(objects(trees[name], "Deployment")[api.DEPLOYMENT])["containers"][0]
    sized = env.resources(env.apps.inference_api.sizing, "api")
    ephemeral = {bound: {"ephemeral-storage": amount} for bound, amount in k8s.EPHEMERAL_STORAGE.items()}
    assert container["resources"]["limits"] == {**sized.limits.model_dump(), **ephemeral["limits"]}
    assert container["resources"]["requests"] == {**sized.requests.model_dump(), **ephemeral["requests"]}


@pytest.mark.parametrize("name", ENVS)
def test_daily_batch_cronjob_as_the_seed_asks(name: str, trees: dict[str, RenderedTree]) -> None:
    env = load_environment(name).apps.batch_pipeline
    cron = objects(trees[name], "CronJob")[batch.CRON_JOB]
    assert cron["metadata"]["namespace"] == env.namespace
    spec = cron["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (env.schedule, env.time_zone, "Forbid")
    job = spec["jobTemplate"]["spec"]
    assert (job["activeDeadlineSeconds"], job["backoffLimit"]) == (env.active_deadline_s, env.backoff_limit)
    assert pod_spec(cron)["containers"][0]["args"] == ["apps.batch", "run"]


def test_backfill_is_an_indexed_job_with_one_completion_per_day() -> None:
    env = load_environment("prod")
    job = batch.backfill_job(env, start=date(2025, 1, 30), end=date(2025, 2, 11))
    spec = job["spec"]
    days = batch.partitions(start=date(2025, 1, 30), end=date(2025, 2, 11))
    assert days[0] == "20250130" and days[-1] == "20250211" and days[2] == "20250201"
    assert (spec["completionMode"], spec["completions"]) == ("Indexed", len(days))
    assert spec["parallelism"] == min(env.apps.batch_pipeline.backfill_parallelism, len(days))
    assert spec["template"]["spec"]["containers"][0]["args"][-4:] == ["--start", "20250130", "--end", "20250211"]
    with pytest.raises(Exception, match="before start"):
        batch.backfill_job(env, start=date(2025, 2, 2), end=date(2025, 2, 1))


def test_manual_job_pins_the_partition() -> None:
    job = batch.manual_job(load_environment("local"), partition=date(2025, 1, 15))
    env_vars = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "PARTITION_DATE", "value": "20250115"} in env_vars
    # Named per partition: a run for the next day does not clash with this one.
    assert job["metadata"]["name"] == "pcc-manual-run-20250115"
    assert batch.manual_job(load_environment("local"), partition=date(2025, 1, 16))["metadata"]["name"] == (
        "pcc-manual-run-20250116")
    with pytest.raises(k8s.BuildError, match="manual Job name 'PCC_run': expected a DNS label"):
        batch.manual_job(load_environment("local"), partition=date(2025, 1, 16), name="PCC_run")



@pytest.mark.parametrize("name", ENVS)
def test_the_trees_manual_run_template_is_named_by_the_server_on_each_create(
    name: str, trees: dict[str, RenderedTree]
) -> None:
    [template] = [o for o in trees[name].objects if not o.synced]
    assert template.path == f"templates/{batch.APP}/job-{batch.MANUAL_JOB}.yaml"
    # kubectl create -f twice: pcc-manual-run-x7k2p, then pcc-manual-run-q9f4d, never a clash.
    assert template.manifest["metadata"]["generateName"] == f"{batch.MANUAL_JOB}-"
    assert "name" not in template.manifest["metadata"]


def _deployments(tree: RenderedTree) -> dict[str, dict]:
    return objects(tree, "Deployment", fraud.APP)


def test_fraud_gpu_variants_run_where_a_gpu_pool_exists(trees: dict[str, RenderedTree]) -> None:
    env = load_environment("prod")
    deps = _deployments(trees["prod"])
    assert set(deps) == {
        "data-gather",
        "preprocessing-cpu",
        "preprocessing-gpu",
        "model-build",
        "inference-cpu",
        "inference-gpu",
    }
    assert deps["inference-gpu"]["spec"]["replicas"] == env.apps.fraud_pipeline.replicas.inference
    assert deps["inference-cpu"]["spec"]["replicas"] == 0
    gpu_pod = pod_spec(deps["inference-gpu"])
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu_pod["nodeSelector"] == env.node_groups["gpu"].labels
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in gpu_pod[
        "tolerations"
    ]
    assert {"name": "DEVICE", "value": "gpu"} in gpu_pod["containers"][0]["env"]


def test_fraud_without_gpu_scales_gpu_variants_to_zero(trees: dict[str, RenderedTree]) -> None:
    env = load_environment("dev")
    assert env.apps.fraud_pipeline.use_gpu is False
    deps = _deployments(trees["dev"])
    assert deps["preprocessing-gpu"]["spec"]["replicas"] == deps["inference-gpu"]["spec"]["replicas"] == 0
    assert deps["inference-cpu"]["spec"]["replicas"] == env.apps.fraud_pipeline.replicas.inference
    assert "nvidia.com/gpu" not in pod_spec(deps["model-build"])["containers"][0]["resources"]["limits"]
    no_pool = render(
        env_with(
            "staging",
            node_groups={
                "gpu": {"kind": "cpu", "instance_types": ["m5.large"], "taints": [], "labels": {"workload": "cpu"}}
            },
            apps={"fraud_pipeline": {"use_gpu": False}},  # asking for GPUs here is refused (test_environments)
        )
    )
    assert _deployments(no_pool)["inference-gpu"]["spec"]["replicas"] == 0


def test_fraud_shared_volume_rwx_or_colocated_rwo(trees: dict[str, RenderedTree]) -> None:
    pvc = objects(trees["staging"], "PersistentVolumeClaim")[fraud.PVC]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, dep in _deployments(trees["staging"]).items():  # RWX: free to spread, nothing to share
        assert "podAffinity" not in pod_spec(dep).get("affinity", {}), name
    # local: ReadWriteOnce, so every stage must share the node that mounts the volume.
    assert objects(trees["local"], "PersistentVolumeClaim")[fraud.PVC]["spec"]["accessModes"] == ["ReadWriteOnce"]
    for name, dep in _deployments(trees["local"]).items():
        spec = pod_spec(dep)
        term = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["topologyKey"] == "kubernetes.io/hostname", name
        assert spec["tolerations"], f"{name}: must reach the GPU node the GPU stages need"
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert fraud.MOUNT in mounts


@pytest.mark.parametrize("name", ENVS)
def test_replicas_spread_over_nodes_unless_a_volume_binds_them_to_one(name: str, trees: dict[str, RenderedTree]) -> None:
    rwo = not load_environment(name).storage.shared_volume.read_write_many
    for dep in objects(trees[name], "Deployment").values():
        spec, bound = pod_spec(dep), rwo and dep["metadata"]["namespace"] == fraud.namespace(load_environment(name))
        if dep["spec"]["replicas"] > 1 and not bound:
            [host, _zone] = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert host["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
            assert host["podAffinityTerm"]["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("name", ENVS)
def test_finished_runs_are_kept_by_cronjob_history_and_a_drain_passes_unready_api_pods(
    name: str, trees: dict[str, RenderedTree]
) -> None:
    for cron in objects(trees[name], "CronJob").values():
        # A 24 h TTL would delete each daily run before three could be kept.
        assert "ttlSecondsAfterFinished" not in cron["spec"]["jobTemplate"]["spec"], cron["metadata"]["name"]
        assert cron["spec"]["successfulJobsHistoryLimit"] == cron["spec"]["failedJobsHistoryLimit"] == 3
    assert batch.manual_job(load_environment(name))["spec"]["ttlSecondsAfterFinished"] == 86400
    [pdb] = objects(trees[name], "PodDisruptionBudget", app="inference-api").values()
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_irsa_environment_annotates_service_accounts() -> None:
    env = env_with("prod", aws={"cluster": {"identity": "irsa"}})
    holders = [*service_accounts(env), *charts.calling_aws(env)]
    arns = {app: f"arn:aws:iam::123456789012:role/{app}" for app, _, _ in holders}
    tree = render(env, cloud=SAMPLE_CLOUD.model_copy(update={'role_arns': arns}))
    accounts = objects(tree, "ServiceAccount")
    # Add-ons call no AWS API of ours: no role, in IRSA environments too.
    assert "eks.amazonaws.com/role-arn" not in accounts.pop("metrics-server")["metadata"]["annotations"]
    for sa in accounts.values():
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::123456789012:role/")
    # The chart add-ons' service accounts carry their own roles, through the charts' values.
    for name, _, account in charts.calling_aws(env):
        values = yaml.safe_load(tree[f"applications/{name}.yaml"])["spec"]["sources"][0]["helm"]["valuesObject"]
        found = [v for v in _walk(values) if isinstance(v, dict) and v.get("eks.amazonaws.com/role-arn")]
        assert found == [{"eks.amazonaws.com/role-arn": arns[name]}], name
    with pytest.raises(RenderError, match=r"ServiceAccount [a-z-]+/[a-z-]+ uses IRSA but no role ARN was given"):
        render(env)
    plain = render(load_environment("prod"))  # Pod Identity: associations live in AWS
    assert all(
        "eks.amazonaws.com/role-arn" not in sa["metadata"]["annotations"]
        for sa in objects(plain, "ServiceAccount").values()
    )


def _walk(value: object) -> list[object]:
    if isinstance(value, dict):
        return [value, *(x for v in value.values() for x in _walk(v))]
    if isinstance(value, list):
        return [x for v in value for x in _walk(v)]
    return [value]


def test_image_tag_override_reaches_every_app_container_and_no_addon() -> None:
    env = load_environment("local")
    tree = render(env, image_tag="sha-0123abcd")
    images = {
        o.app: c["image"]
        for o in tree.objects
        if o.kind in ("Deployment", "CronJob", "Job")
        for c in pod_spec(o.manifest)["containers"]
    }
    addon = env.addons.metrics_server
    assert images.pop("metrics-server") == f"{addon.image}:{addon.version}"  # upstream's, at its pinned version
    assert set(images.values()) == {"ml-inference-api:sha-0123abcd", "ml-pipeline:sha-0123abcd"}
    with pytest.raises(RenderError, match="latest"):
        render(load_environment("local"), image_tag="latest")


def test_sync_waves_put_namespaces_first_and_hpa_after_workloads(trees: dict[str, RenderedTree]) -> None:
    order = trees["prod"].app_objects(api.APP)
    kinds = [o.kind for o in order]
    assert kinds[0] == "Namespace"
    assert kinds.index("Deployment") < kinds.index("HorizontalPodAutoscaler")
    for obj in order:
        assert obj.manifest["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == str(obj.wave)


def test_every_object_carries_the_recommended_labels(trees: dict[str, RenderedTree]) -> None:
    keys = {f"app.kubernetes.io/{k}" for k in ("name", "instance", "component", "part-of", "managed-by")}
    for obj in trees["prod"].objects:
        assert keys <= set(obj.manifest["metadata"]["labels"]), obj.ref


@pytest.mark.parametrize("name", ENVS)
def test_api_quota_lets_the_hpa_reach_its_maximum(name: str, trees: dict[str, RenderedTree]) -> None:
    from environments.quantities import cpu_millis, memory_bytes

    env = load_environment(name)
    hard = objects(trees[name], "ResourceQuota", api.APP)[f"{api.APP}-quota"]["spec"]["hard"]
    limits = env.resources(env.apps.inference_api.sizing, "api").limits
    peak = env.apps.inference_api.autoscaling.max_replicas
    assert int(hard["pods"]) >= peak
    assert cpu_millis(hard["limits.cpu"]) >= peak * cpu_millis(limits.cpu)
    assert memory_bytes(hard["limits.memory"]) >= peak * memory_bytes(limits.memory)


def test_backfill_job_validates_against_the_cluster_schema() -> None:
    from argocd.render import RenderedObject
    from argocd.validate import validate_tree

    env = load_environment("prod")
    job = batch.backfill_job(env, start=date(2025, 1, 1), end=date(2025, 1, 31))
    tree = RenderedTree(env.name, [RenderedObject(path="templates/backfill.yaml", app=batch.APP, wave=0, manifest=job)])
    report = validate_tree(env, tree)
    assert report.findings == [], [str(f) for f in report.findings]


@pytest.mark.parametrize("name", ENVS)
def test_fraud_stages_carry_the_seeds_app_label_without_changing_their_selectors(
    name: str, trees: dict[str, RenderedTree]
) -> None:
    for stage, dep in _deployments(trees[name]).items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == stage  # kubectl logs -l app=data-gather
        # A Deployment's selector is immutable: the seed's label is on the pods, not in it.
        assert "app" not in dep["spec"]["selector"]["matchLabels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize(("name", "level"), [("local", "INFO"), ("dev", "DEBUG"), ("staging", "INFO"), ("prod", "INFO")])
def test_every_workload_runs_at_the_envs_log_level(name: str, level: str, trees: dict[str, RenderedTree]) -> None:
    tree = trees[name]
    config_maps = {(o.namespace, o.name): o.manifest["data"] for o in tree.objects if o.kind == "ConfigMap"}
    seen: set[str] = set()
    for obj in tree.objects:
        if obj.kind not in ("Deployment", "CronJob", "Job") or obj.app not in (
                api.APP, batch.APP, fraud.APP, cleanup.APP):
            continue
        for container in pod_spec(obj.manifest)["containers"]:
            # What the container sees: its ConfigMaps, then its own env entries on top.
            environ: dict[str, str] = {}
            for source in container.get("envFrom", []):
                environ.update(config_maps[(obj.namespace, source["configMapRef"]["name"])])
            environ.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
            assert environ.get("LOG_LEVEL") == level, f"{obj.ref} container {container['name']}"
        seen.add(obj.app)
    assert seen == {api.APP, batch.APP, fraud.APP, cleanup.APP}


@pytest.mark.parametrize("name", ENVS)
def test_fraud_inference_workers_scale_within_the_envs_bounds(name: str, trees: dict[str, RenderedTree]) -> None:
    env = load_environment(name)
    fraud_env = env.apps.fraud_pipeline
    scaling = fraud_env.inference_autoscaling
    assert scaling is not None
    running = "inference-gpu" if env.fraud_on_gpu else "inference-cpu"
    hpas = objects(trees[name], "HorizontalPodAutoscaler", fraud.APP)
    assert set(hpas) == {running}  # the stopped variant has none: a commit's replicas still reach it
    spec = hpas[running]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": running}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (scaling.min_replicas, scaling.max_replicas)
    assert _deployments(trees[name])[running]["spec"]["replicas"] == fraud_env.replicas.inference
    # Argo CD leaves the HPA's replicas alone (and no other stage's).
    ignored = objects(trees[name], "Application")[f"{name}-{fraud.APP}"]["spec"]["ignoreDifferences"]
    assert [(i["kind"], i["name"], i["jsonPointers"]) for i in ignored] == [("Deployment", running, ["/spec/replicas"])]
    # The namespace's quota leaves room for the peak (plus a surge pod), and a drain goes one at a time.
    hard = objects(trees[name], "ResourceQuota", fraud.APP)[f"{fraud.APP}-quota"]["spec"]["hard"]
    assert int(hard["pods"]) >= scaling.max_replicas + 1
    if scaling.max_replicas > 1:
        assert objects(trees[name], "PodDisruptionBudget", fraud.APP)[running]["spec"]["maxUnavailable"] == 1


def test_seed_004_worker_bounds_in_prod_and_local_fits_its_two_cores() -> None:
    prod, local = load_environment("prod").apps.fraud_pipeline, load_environment("local").apps.fraud_pipeline
    assert prod.inference_autoscaling is not None and local.inference_autoscaling is not None
    assert (prod.inference_autoscaling.min_replicas, prod.inference_autoscaling.max_replicas) == (2, 20)
    assert local.inference_autoscaling.max_replicas <= local.replicas.inference  # never more than it starts with
    with pytest.raises(ValueError, match=r"replicas.inference \(25\) must lie within inference_autoscaling 2..20"):
        env_with("prod", apps={"fraud_pipeline": {"replicas": {"inference": 25}}})
    # Twenty GPU workers need GPU nodes to match: refused before any cluster sees Pending pods.
    with pytest.raises(ValueError, match="inference at its peak"):
        env_with("prod", node_groups={"gpu": {"max_size": 4}})


def test_stopping_fraud_stages_is_a_committed_replicas_change_that_renders_and_validates() -> None:
    from argocd.validate import validate_tree

    stopped = env_with("prod", apps={"fraud_pipeline": {"replicas": {
        "data_gather": 0, "preprocessing": 0, "inference": 0, "model_build": 0}}})
    tree = render(stopped)
    assert {n: d["spec"]["replicas"] for n, d in _deployments(tree).items()} == dict.fromkeys(
        ["data-gather", "preprocessing-cpu", "preprocessing-gpu", "model-build", "inference-cpu", "inference-gpu"], 0)
    # No HPA holds the stopped workers up, and Argo CD applies the zeros (it ignores no replicas).
    assert not objects(tree, "HorizontalPodAutoscaler", fraud.APP)
    assert "ignoreDifferences" not in objects(tree, "Application")[f"prod-{fraud.APP}"]["spec"]
    report = validate_tree(stopped, tree)
    assert report.findings == [], [str(f) for f in report.findings]


def test_the_nlb_opens_no_node_port_the_namespace_quota_refuses(trees: dict[str, RenderedTree]) -> None:
    """A LoadBalancer Service takes node ports unless told not to; the cloud quota allows none."""
    lb = objects(trees["prod"], "Service", "inference-api")[api.LOAD_BALANCER]["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is False and lb["loadBalancerClass"] == "service.k8s.aws/nlb"
    [quota] = objects(trees["prod"], "ResourceQuota", "inference-api").values()
    assert quota["spec"]["hard"]["services.nodeports"] == "0"
