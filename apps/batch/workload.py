"""How the batch pipeline runs on Kubernetes (seed 000), as pure functions of the environment.

The daily CronJob ``pcc-daily-pipeline`` is the synced workload; ``manual_job`` (one partition,
``kubectl create -f``) and ``backfill_job`` (an Indexed Job, one completion per day) are
templates the CLI and the harness create on demand.

    >>> from datetime import date
    >>> from environments import load_environment
    >>> backfill_job(load_environment("local"), start=date(2025, 1, 1), end=date(2025, 1, 3))["spec"]["completions"]
    3
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from pydantic import TypeAdapter, ValidationError

from apps import k8s
from apps.cleanup import workload as cleanup
from apps.k8s import AppMeta, Obj
from environments.model import DnsLabel, Environment

APP = "batch-pipeline"
CRON_JOB = "pcc-daily-pipeline"
MANUAL_JOB = "pcc-manual-run"
SERVE_DEPLOYMENT = "pcc-pipeline-serve"
SERVICE_ACCOUNT = "pcc-pipeline"
CONFIG_MAP = "pcc-config"
IMAGE = "ml-pipeline"
METRICS_PORT = 8080
# The seed's operators select pods with these (kubectl logs -l app=pcc-pipeline,type=cronjob).
SEED_APP_LABEL = {"app": "pcc-pipeline"}
_VOLUMES = (("logs", "/app/logs"), ("models", "/app/models"))
# A Job's name is also its pods' job-name label value: a DNS label.
_JOB_NAME = TypeAdapter(DnsLabel)


def namespace(env: Environment) -> str:
    return env.apps.batch_pipeline.namespace


def config(env: Environment) -> dict[str, str]:
    batch = env.apps.batch_pipeline
    data = {
        "DATA_URI": env.storage.data_uri,
        "MODEL_REGISTRY_URI": env.model_registry_uri("pcc"),
        "SOURCE": batch.source,
        "DRY_RUN": "true" if batch.dry_run else "false",
        "TZ": batch.time_zone,
        "LOG_LEVEL": env.log_level,
        "METRICS_PORT": str(METRICS_PORT),
    }
    if env.storage.endpoint_url:
        data["S3_ENDPOINT_URL"] = env.storage.endpoint_url
    return {**data, **k8s.aws_environ(env)}


def resources(env: Environment) -> Obj:
    return k8s.resources(env=env, strategy=env.apps.batch_pipeline.sizing, workload="job")


def serve_resources(env: Environment) -> Obj:
    return k8s.resources(env=env, strategy=env.apps.batch_pipeline.sizing, workload="worker")


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    batch = env.apps.batch_pipeline
    if not batch.enabled:
        return []
    ns = namespace(env)
    meta = AppMeta(env=env, name=APP, component="pipeline", extra=SEED_APP_LABEL)
    res = resources(env)
    data = config(env)
    # What may run at once: the daily run, one manual run, a backfill, the serve mode, cleanup.
    budgets = [k8s.PodBudget(resources=res, count=2 + batch.backfill_parallelism)]
    sizes = [res]
    if batch.long_running:
        budgets.append(k8s.PodBudget(resources=serve_resources(env), count=2))
        sizes.append(serve_resources(env))
    if env.apps.cleanup.enabled:
        budgets.append(k8s.PodBudget(resources=cleanup.resources(env), count=1))
        sizes.append(cleanup.resources(env))
    out: list[Obj] = [
        *k8s.namespace_bundle(meta=meta, app=APP, ns=ns, budgets=budgets, default=res, largest=k8s.largest(sizes),
                              account=SERVICE_ACCOUNT, role_arn=role_arn),
        k8s.config_map(meta=meta, name=CONFIG_MAP, namespace=ns, data=data),
        k8s.pipeline_policy(meta=meta, app=APP, ns=ns, env=env, metrics_port=METRICS_PORT),
        _cron_job(env, meta.with_component("daily", type="cronjob"), ns, data),
    ]
    if batch.long_running:
        out.append(_serve(env, meta.with_component("serve", type="deployment"), ns, data))
    return out


def _container(env: Environment, *, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> Obj:
    return k8s.container(
        name=name,
        image=env.image(IMAGE),
        pull_policy=env.images.pull_policy,
        args=["apps.batch", *args],
        resources=resources(env),
        config_map=CONFIG_MAP,
        env=extra_env,
        ports={"metrics": METRICS_PORT},
        volume_mounts=_VOLUMES,
    )


def _volumes() -> list[Obj]:
    return [{"name": v, "emptyDir": {"sizeLimit": "1Gi"}} for v, _ in _VOLUMES]


def _job_template(env: Environment, meta: AppMeta, container: Obj, data: dict[str, str]) -> Obj:
    spec = k8s.pod_spec(
        service_account=SERVICE_ACCOUNT,
        containers=[container],
        volumes=_volumes(),
        restart_policy="Never",
        node_selector=k8s.cpu_node_selector(env),
    )
    return k8s.pod_template(meta=meta, spec=spec, annotations={"checksum/config": k8s.config_checksum(data)})


def _cron_job(env: Environment, meta: AppMeta, ns: str, data: dict[str, str]) -> Obj:
    batch = env.apps.batch_pipeline
    template = _job_template(env, meta, _container(env, name=CRON_JOB, args=["run"]), data)
    job = k8s.job_spec(template=template, active_deadline_s=batch.active_deadline_s, backoff_limit=batch.backoff_limit,
                     ttl_s=None)
    return k8s.cron_job(
        meta=meta,
        name=CRON_JOB,
        namespace=ns,
        schedule=batch.schedule,
        time_zone=batch.time_zone,
        job=job,
    )


def _serve(env: Environment, meta: AppMeta, ns: str, data: dict[str, str]) -> Obj:
    main = k8s.container(
        name="serve",
        image=env.image(IMAGE),
        pull_policy=env.images.pull_policy,
        args=["apps.batch", "serve"],
        resources=serve_resources(env),
        config_map=CONFIG_MAP,
        ports={"metrics": METRICS_PORT},
        probes=k8s.probes(port="metrics"),
        volume_mounts=_VOLUMES,
    )
    spec = k8s.pod_spec(
        service_account=SERVICE_ACCOUNT, containers=[main], volumes=_volumes(), node_selector=k8s.cpu_node_selector(env)
    )
    template = k8s.pod_template(meta=meta, spec=spec, annotations={"checksum/config": k8s.config_checksum(data)})
    return k8s.deployment(meta=meta, name=SERVE_DEPLOYMENT, namespace=ns, replicas=1, template=template)


def manual_job(env: Environment, *, partition: date | None = None, name: str | None = None) -> Obj:
    """One run for one partition (yesterday UTC when ``partition`` is None), as seed 000's job.yaml.

    Named per partition (`pcc-manual-run-20250115`), so a run for another day never clashes with
    the last one; without a partition it is the tree's template, which the API server names
    (`generateName: pcc-manual-run-`): each `kubectl create -f` of it is a new run.
    """
    template = partition is None and name is None
    name = name or (f"{MANUAL_JOB}-{partition:%Y%m%d}" if partition else MANUAL_JOB)
    try:
        _JOB_NAME.validate_python(name)
    except ValidationError:
        raise k8s.BuildError(f"manual Job name {name!r}: expected a DNS label (lowercase letters, digits and "
                             "'-', at most 63 characters)") from None
    batch = env.apps.batch_pipeline
    meta = AppMeta(env=env, name=APP, component="manual", extra={**SEED_APP_LABEL, "type": "manual-run"})
    extra = {"PARTITION_DATE": partition.strftime("%Y%m%d")} if partition else None
    container = _container(env, name="pcc-manual-pipeline", args=["run"], extra_env=extra)
    pod_template = _job_template(env, meta, container, config(env))
    metadata = k8s.metadata(meta=meta, name=name, namespace=namespace(env), annotations=k8s.workload_skips(env))
    if template:
        metadata = {"generateName": f"{name}-", **{k: v for k, v in metadata.items() if k != "name"}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": k8s.job_spec(
            template=pod_template, active_deadline_s=batch.active_deadline_s, backoff_limit=batch.backoff_limit
        ),
    }


def backfill_job(env: Environment, *, start: date, end: date, name: str | None = None) -> Obj:
    """An Indexed Job: completion ``i`` runs partition ``start + i`` days, spread over the cluster."""
    if end < start:
        raise k8s.BuildError(f"backfill: end {end:%Y%m%d} is before start {start:%Y%m%d}; expected start <= end")
    batch = env.apps.batch_pipeline
    days = (end - start).days + 1
    parallelism = min(batch.backfill_parallelism, days)
    meta = AppMeta(env=env, name=APP, component="backfill", extra={**SEED_APP_LABEL, "type": "backfill"})
    container = _container(
        env, name="backfill", args=["backfill", "--start", f"{start:%Y%m%d}", "--end", f"{end:%Y%m%d}"]
    )
    template = _job_template(env, meta, container, config(env))
    spec = k8s.job_spec(
        template=template,
        # Each wave of `parallelism` partitions gets the one-run budget.
        active_deadline_s=batch.active_deadline_s * math.ceil(days / parallelism),
        backoff_limit=batch.backoff_limit * days,
    )
    spec.update(
        {
            "completionMode": "Indexed",
            "completions": days,
            "parallelism": parallelism,
            "backoffLimitPerIndex": batch.backoff_limit,
        }
    )
    job_name = name or f"pcc-backfill-{start:%Y%m%d}-{end:%Y%m%d}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": k8s.metadata(
            meta=meta, name=job_name, namespace=namespace(env), annotations=k8s.workload_skips(env)
        ),
        "spec": spec,
    }


def partitions(*, start: date, end: date) -> list[str]:
    """The partition each completion index runs, in index order (what the app computes too)."""
    return [(start + timedelta(days=i)).strftime("%Y%m%d") for i in range((end - start).days + 1)]
