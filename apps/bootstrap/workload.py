"""How each model family's first model is made on Kubernetes: one Job per family in use.

The Jobs are Argo CD Sync hooks of their own Application, synced before the apps that serve
the families (BeforeHookCreation: each sync runs them afresh; a family that already serves a
model of its contract makes them a no-op). They run in their own namespace under one service
account whose role (in the cloud) reads and writes only the families' registries.

    >>> from environments import load_environment
    >>> [o["metadata"]["name"] for o in objects(load_environment("local")) if o["kind"] == "Job"]
    ['model-bootstrap-fraud', 'model-bootstrap-inference', 'model-bootstrap-pcc']
"""

from __future__ import annotations

from apps import k8s
from apps.k8s import AppMeta, Obj
from environments.model import Environment, ModelFamily

APP = "model-bootstrap"
NAMESPACE = "ml-models"
SERVICE_ACCOUNT = "model-bootstrap"
IMAGE = "ml-pipeline"
# Training the deployable forest (50,000 rows) takes minutes on one core; a stuck run is retried.
ACTIVE_DEADLINE_S = 1800
BACKOFF_LIMIT = 2
TTL_S = 3600
HOOK = {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}


def namespace(env: Environment) -> str:
    return NAMESPACE


def job_name(family: ModelFamily) -> str:
    return f"{APP}-{family}"


def enabled(env: Environment) -> bool:
    return bool(env.families_in_use)


def config(env: Environment, family: ModelFamily) -> dict[str, str]:
    """The Job's environment (contract in apps/bootstrap/settings.py)."""
    data = {
        "MODEL_FAMILY": family,
        "MODEL_REGISTRY_URI": env.model_registry_uri(family),
        "MODEL_CONTRACT": env.models[family].model_dump_json(),
        "LOG_LEVEL": env.log_level,
    }
    if env.storage.endpoint_url:
        data["S3_ENDPOINT_URL"] = env.storage.endpoint_url
    return {**data, **k8s.aws_environ(env)}


def resources(env: Environment, family: ModelFamily) -> Obj:
    return k8s.resources(env=env, strategy=env.models[family].training.sizing, workload="job")


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    families = env.families_in_use
    if not families:
        return []
    meta = AppMeta(env=env, name=APP, component="bootstrap")
    sizes = [resources(env, f) for f in families]
    out: list[Obj] = [
        # Every family's Job may run at once (a sync starts them together).
        *k8s.namespace_bundle(meta=meta, app=APP, ns=NAMESPACE, budgets=[k8s.PodBudget(resources=r, count=1) for r in sizes],
                              default=sizes[0], largest=k8s.largest(sizes), account=SERVICE_ACCOUNT, role_arn=role_arn),
        k8s.network_policy(meta=meta, name=f"{APP}-allow", namespace=NAMESPACE, pod_selector=meta.app_selector(),
                           ingress=[], egress=k8s.egress_rules(env)),
    ]
    for family in families:
        out += _family(env, meta.with_component("bootstrap", **{"ml-platform/model-family": family}), family)
    return out


def _family(env: Environment, meta: AppMeta, family: ModelFamily) -> list[Obj]:
    name, data = job_name(family), config(env, family)
    main = k8s.container(name="bootstrap", image=env.image(IMAGE), pull_policy=env.images.pull_policy,
                         args=["apps.bootstrap"], resources=resources(env, family), config_map=name)
    spec = k8s.pod_spec(service_account=SERVICE_ACCOUNT, containers=[main], restart_policy="Never",
                        node_selector=k8s.cpu_node_selector(env))
    template = k8s.pod_template(meta=meta, spec=spec, annotations={"checksum/config": k8s.config_checksum(data)})
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": k8s.metadata(meta=meta, name=name, namespace=NAMESPACE,
                                 annotations={**HOOK, **k8s.workload_skips(env)}),
        "spec": k8s.job_spec(template=template, active_deadline_s=ACTIVE_DEADLINE_S, backoff_limit=BACKOFF_LIMIT,
                             ttl_s=TTL_S),
    }
    return [k8s.config_map(meta=meta, name=name, namespace=NAMESPACE, data=data), job]
