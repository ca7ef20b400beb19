"""How the retention cleanup runs on Kubernetes (seed 004): a daily CronJob.

It prunes the batch pipeline's data, so it lives in that pipeline's namespace (which the
batch app owns, with its quota and Pod Security labels).

    >>> from environments import load_environment
    >>> [o["kind"] for o in objects(load_environment("local"))][-1]
    'CronJob'
"""

from __future__ import annotations

from apps import k8s
from apps.k8s import AppMeta, Obj
from environments.model import Environment

APP = "cleanup"
CRON_JOB = "data-cleanup"
SERVICE_ACCOUNT = "data-cleanup"
CONFIG_MAP = "data-cleanup-config"
IMAGE = "ml-pipeline"
# Deleting a day's worth of objects is minutes of work; a stuck run must not block tomorrow's.
ACTIVE_DEADLINE_S = 1800
BACKOFF_LIMIT = 2


def namespace(env: Environment) -> str:
    return env.apps.batch_pipeline.namespace


def config(env: Environment) -> dict[str, str]:
    cleanup = env.apps.cleanup
    data = {
        "DATA_URI": env.storage.data_uri,
        "SUCCESS_RETENTION_HOURS": str(cleanup.success_retention_hours),
        "FAILED_RETENTION_HOURS": str(cleanup.failed_retention_hours),
        "DRY_RUN": "true" if cleanup.dry_run else "false",
        "LOG_LEVEL": env.log_level,
    }
    if env.storage.endpoint_url:
        data["S3_ENDPOINT_URL"] = env.storage.endpoint_url
    return {**data, **k8s.aws_environ(env)}


def resources(env: Environment) -> Obj:
    return k8s.resources(env=env, strategy=env.apps.cleanup.sizing, workload="job")


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    cleanup = env.apps.cleanup
    if not cleanup.enabled:
        return []
    ns = namespace(env)
    meta = AppMeta(env=env, name=APP, component="retention")
    data = config(env)
    main = k8s.container(
        name=CRON_JOB,
        image=env.image(IMAGE),
        pull_policy=env.images.pull_policy,
        args=["apps.cleanup"],
        resources=resources(env),
        config_map=CONFIG_MAP,
    )
    spec = k8s.pod_spec(
        service_account=SERVICE_ACCOUNT,
        containers=[main],
        restart_policy="Never",
        node_selector=k8s.cpu_node_selector(env),
    )
    template = k8s.pod_template(meta=meta, spec=spec, annotations={"checksum/config": k8s.config_checksum(data)})
    job = k8s.job_spec(template=template, active_deadline_s=ACTIVE_DEADLINE_S, backoff_limit=BACKOFF_LIMIT, ttl_s=None)
    return [
        k8s.service_account(meta=meta, name=SERVICE_ACCOUNT, namespace=ns, role_arn=role_arn),
        k8s.config_map(meta=meta, name=CONFIG_MAP, namespace=ns, data=data),
        k8s.network_policy(
            meta=meta,
            name=f"{APP}-allow",
            namespace=ns,
            pod_selector=meta.app_selector(),
            ingress=[],
            egress=k8s.egress_rules(env),
        ),
        k8s.cron_job(
            meta=meta,
            name=CRON_JOB,
            namespace=ns,
            schedule=cleanup.schedule,
            time_zone=env.apps.batch_pipeline.time_zone,
            job=job,
        ),
    ]
