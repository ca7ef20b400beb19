"""How the fraud pipeline runs on Kubernetes (seed 002), as a pure function of the environment.

Stages talk through file queues on one shared volume (PVC ``fraud-pipeline-flashblade`` at
``/mnt/flashblade``). GPU variants run where the environment has a gpu node group and
``use_gpu`` is on; otherwise they are rendered at zero replicas and the CPU variants run.
When the storage is ReadWriteOnce every stage must sit on the one node that mounts the
volume (the seed's "pods stuck in Pending" story), so all stages share a required pod
affinity, on a GPU node when GPU stages run.

    >>> from environments import load_environment
    >>> [o["metadata"]["name"] for o in objects(load_environment("dev")) if o["kind"] == "Deployment"][:2]
    ['data-gather', 'preprocessing-cpu']
"""

from __future__ import annotations

from dataclasses import dataclass

from apps import k8s
from apps.k8s import AppMeta, Obj
from environments.model import Environment

APP = "fraud-pipeline"
PVC = "fraud-pipeline-flashblade"
MOUNT = "/mnt/flashblade"
SERVICE_ACCOUNT = "fraud-pipeline"
CONFIG_MAP = "fraud-pipeline-config"
IMAGE = "ml-pipeline"
METRICS_PORT = 8080


@dataclass(frozen=True)
class Stage:
    deployment: str
    command: str  # python -m apps.fraud <command>
    replicas: int
    gpu: bool
    # Scaled by an HPA within apps.fraud_pipeline.inference_autoscaling, from `replicas`.
    autoscaled: bool = False


def namespace(env: Environment) -> str:
    return env.apps.fraud_pipeline.namespace


def stages(env: Environment) -> list[Stage]:
    """The six Deployments of seed 002 with the replicas this environment runs."""
    wanted = env.apps.fraud_pipeline.replicas
    gpu = env.fraud_on_gpu

    def split(count: int) -> tuple[int, int]:
        return (0, count) if gpu else (count, 0)

    pre_cpu, pre_gpu = split(wanted.preprocessing)
    inf_cpu, inf_gpu = split(wanted.inference)
    # Only the variant that runs gets the HPA: at 0 replicas the stage is stopped, and an HPA there
    # would make Argo CD ignore the replicas a commit sets to start it (or the variant switch).
    scaled = env.apps.fraud_pipeline.inference_autoscaling is not None
    return [
        Stage("data-gather", "data-gather", wanted.data_gather, gpu=False),
        Stage("preprocessing-cpu", "preprocessing", pre_cpu, gpu=False),
        Stage("preprocessing-gpu", "preprocessing", pre_gpu, gpu=True),
        # Model building trains on the GPU where there is one, on CPUs otherwise.
        Stage("model-build", "model-build", wanted.model_build, gpu=gpu),
        Stage("inference-cpu", "inference", inf_cpu, gpu=False, autoscaled=scaled and inf_cpu > 0),
        Stage("inference-gpu", "inference", inf_gpu, gpu=True, autoscaled=scaled and inf_gpu > 0),
    ]


def config(env: Environment) -> dict[str, str]:
    fraud = env.apps.fraud_pipeline
    data = {
        "QUEUE_ROOT": MOUNT,
        "LEASE_S": str(fraud.lease_s),
        "MAX_ATTEMPTS": str(fraud.max_attempts),
        "MODEL_REGISTRY_URI": env.model_registry_uri("fraud"),
        "METRICS_PORT": str(METRICS_PORT),
        "LOG_LEVEL": env.log_level,
    }
    if env.storage.endpoint_url:
        data["S3_ENDPOINT_URL"] = env.storage.endpoint_url
    return {**data, **k8s.aws_environ(env)}


def resources(env: Environment, *, gpu: bool) -> Obj:
    return k8s.resources(
        env=env, strategy=env.apps.fraud_pipeline.sizing, workload="worker", gpus=env.apps.fraud_pipeline.gpus_per_pod if gpu else 0
    )


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    fraud = env.apps.fraud_pipeline
    if not fraud.enabled:
        return []
    ns = namespace(env)
    meta = AppMeta(env=env, name=APP, component="queue")
    volume = env.storage.shared_volume
    data = config(env)
    all_stages = stages(env)
    # Room for each stage at its peak (the HPA's maximum for the inference workers) plus a surge pod.
    budgets = [k8s.PodBudget(resources=resources(env, gpu=s.gpu), count=_peak(env, s) + 1) for s in all_stages]
    cpu_res = resources(env, gpu=False)
    out: list[Obj] = [
        *k8s.namespace_bundle(meta=meta, app=APP, ns=ns, budgets=budgets, default=cpu_res, largest=cpu_res,
                              account=SERVICE_ACCOUNT, role_arn=role_arn),
        k8s.config_map(meta=meta, name=CONFIG_MAP, namespace=ns, data=data),
        k8s.persistent_volume_claim(
            meta=meta,
            name=PVC,
            namespace=ns,
            size=volume.size,
            read_write_many=volume.read_write_many,
            storage_class=volume.storage_class,
        ),
        k8s.pipeline_policy(meta=meta, app=APP, ns=ns, env=env, metrics_port=METRICS_PORT),
    ]
    out += [_deployment(env, meta, ns, stage, data) for stage in all_stages]
    scaling = fraud.inference_autoscaling
    out += [k8s.horizontal_pod_autoscaler(meta=meta.with_component(s.deployment), name=s.deployment, namespace=ns,
                                          scaling=scaling) for s in all_stages if s.autoscaled and scaling]
    # Queue workers tolerate a lost pod (its leases return), but a drain takes them one at a time.
    out += [k8s.pod_disruption_budget(meta=meta.with_component(s.deployment), name=s.deployment, namespace=ns)
            for s in all_stages if _peak(env, s) > 1]
    return out


def _peak(env: Environment, stage: Stage) -> int:
    """The most replicas a stage may run: the HPA's maximum where it scales the stage, else its
    replicas (one at least: operators may start a variant by hand)."""
    return env.apps.fraud_pipeline.inference_peak if stage.autoscaled else max(stage.replicas, 1)


def _placement(env: Environment, meta: AppMeta, stage: Stage) -> dict[str, object]:
    """Node selector, tolerations and affinity of one stage."""
    rwo = not env.storage.shared_volume.read_write_many
    on_gpu = stage.gpu or (rwo and env.fraud_on_gpu)
    placement: dict[str, object] = {
        "node_selector": k8s.gpu_node_selector(env) if on_gpu else k8s.cpu_node_selector(env),
        "tolerations": k8s.gpu_tolerations() if on_gpu else [],
        "affinity": None,
    }
    if not rwo and _peak(env, stage) > 1:
        placement["affinity"] = k8s.spread(meta.with_component(stage.deployment))
    if rwo:
        # A ReadWriteOnce volume attaches to one node: every stage must run where it is mounted.
        placement["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": meta.app_selector()}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }
    return placement


def _deployment(env: Environment, meta: AppMeta, ns: str, stage: Stage, data: dict[str, str]) -> Obj:
    # Seed 002's `app=<stage>` label too: `kubectl logs -n fraud-pipeline -l app=data-gather` works.
    stage_meta = meta.with_component(stage.deployment, app=stage.deployment)
    main = k8s.container(
        name=stage.deployment,
        image=env.image(IMAGE),
        pull_policy=env.images.pull_policy,
        args=["apps.fraud", stage.command],
        resources=resources(env, gpu=stage.gpu),
        config_map=CONFIG_MAP,
        env={"DEVICE": "gpu" if stage.gpu else "cpu"},
        ports={"metrics": METRICS_PORT},
        probes=k8s.probes(port="metrics"),
        volume_mounts=[("queue", MOUNT)],
    )
    placement = _placement(env, meta, stage)
    spec = k8s.pod_spec(
        service_account=SERVICE_ACCOUNT,
        containers=[main],
        volumes=[{"name": "queue", "persistentVolumeClaim": {"claimName": PVC}}],
        node_selector=placement["node_selector"],  # type: ignore[arg-type]
        tolerations=placement["tolerations"],  # type: ignore[arg-type]
        affinity=placement["affinity"],  # type: ignore[arg-type]
        # A leased message is re-queued after LEASE_S: give a stage time to finish the current one.
        termination_grace_s=env.apps.fraud_pipeline.lease_s + 5,
    )
    template = k8s.pod_template(meta=stage_meta, spec=spec, annotations={"checksum/config": k8s.config_checksum(data)})
    rwo = not env.storage.shared_volume.read_write_many
    return k8s.deployment(
        meta=stage_meta, name=stage.deployment, namespace=ns, replicas=stage.replicas, template=template,
        kube_score=[
            *([("deployment-has-host-podantiaffinity",
                "the ReadWriteOnce shared volume keeps every stage on the node that mounts it")] if rwo else []),
            *([k8s.HPA_OWNS_REPLICAS] if stage.autoscaled else []),
        ],
    )
