"""How the inference API runs on Kubernetes (seed 001), as a pure function of the environment.

>>> from environments import load_environment
>>> [o["kind"] for o in objects(load_environment("local"))][:3]
['Namespace', 'ResourceQuota', 'LimitRange']
"""

from __future__ import annotations

from apps import k8s
from apps.addons import charts
from apps.inference.families import declared_schema
from apps.k8s import AppMeta, Obj
from environments.model import Environment

APP = "inference-api"
DEPLOYMENT = "ml-inference-api"
SERVICE = "ml-inference-service"
LOAD_BALANCER = "ml-inference-lb"
INGRESS = "ml-inference-ingress"
SERVICE_ACCOUNT = "ml-inference-api"
CONFIG_MAP = "ml-inference-config"
IMAGE = "ml-inference-api"
PORT_NAME = "http"
# Only the ClusterIP Service carries it, so the ServiceMonitor scrapes each pod once.
SCRAPE_LABEL = "ml-platform/scrape"
# The API's secrets (seed 001: database URLs, API keys): kept in AWS Secrets Manager, delivered
# by the External Secrets Operator as this Secret, mounted as files (never environment variables).
SECRETS = "ml-inference-secrets"
SECRETS_DIR = "/var/run/secrets/ml-inference"


def namespace(env: Environment) -> str:
    return env.apps.inference_api.namespace


def config(env: Environment) -> dict[str, str]:
    """The API's environment (contract in apps/api): everything but secrets."""
    api = env.apps.inference_api
    schema = declared_schema(env.models[api.model_family])
    assert schema is not None, "the environment model requires declared features for the API's family"
    data = {
        "PORT": str(api.port),
        "MODEL_REGISTRY_URI": env.model_registry_uri(api.model_family),
        # Every replica refuses a model of another schema: no mixed fleet, whatever is promoted.
        "MODEL_CONTRACT": schema.model_dump_json(),
        "BATCH_LIMIT": str(api.batch_limit),
        "RELOAD_INTERVAL_S": str(api.reload_interval_s),
        "MAX_BODY_BYTES": str(api.body_limit),
        "MAX_CONNECTIONS": str(api.max_connections),
        "HEADER_TIMEOUT_S": str(api.header_timeout_s),
        "KEEP_ALIVE_S": str(api.keep_alive_s),
        "LOG_LEVEL": env.log_level,
        "FAULT_INJECTION_ALLOWED": "true" if api.fault_injection_allowed else "false",
    }
    if env.storage.endpoint_url:
        data["S3_ENDPOINT_URL"] = env.storage.endpoint_url
    return {**data, **k8s.aws_environ(env)}


def resources(env: Environment) -> Obj:
    return k8s.resources(env=env, strategy=env.apps.inference_api.sizing, workload="api")


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    api = env.apps.inference_api
    if not api.enabled:
        return []
    ns = namespace(env)
    meta = AppMeta(env=env, name=APP, component="api")
    res = resources(env)
    data = config(env)
    out: list[Obj] = [
        *k8s.namespace_bundle(
            meta=meta, app=APP, ns=ns, budgets=[k8s.PodBudget(resources=res, count=api.autoscaling.max_replicas + 1)],
            default=res, largest=res, account=SERVICE_ACCOUNT, role_arn=role_arn,
            node_ports=1 if "node_port" in api.expose else 0),
        _role(meta, ns),
        _role_binding(meta, ns),
        k8s.config_map(meta=meta, name=CONFIG_MAP, namespace=ns, data=data),
        _network_policy(env, meta, ns),
        _deployment(env, meta, ns, res, data),
        _service(env, meta, ns),
    ]
    # Seed 001 runs both: the NLB Service and the ALB Ingress.
    if "load_balancer" in api.expose:
        out.append(_load_balancer(meta, ns))
    if "ingress" in api.expose:
        out.append(_ingress(env, meta, ns))
    out += [
        k8s.horizontal_pod_autoscaler(meta=meta, name=DEPLOYMENT, namespace=ns, scaling=api.autoscaling),
        _pdb(env, meta, ns),
        _service_monitor(meta, ns),
    ]
    if secrets_delivered(env):
        out.append(_external_secret(env, meta, ns))
    return out


def _load_balancer(meta: AppMeta, ns: str) -> Obj:
    """Seed 001's NLB (port 80), made by the AWS Load Balancer Controller. Its targets are the pods'
    own addresses (ip), so no node port is opened: the namespace's quota allows none in the cloud."""
    service = k8s.service(
        meta=meta, name=LOAD_BALANCER, namespace=ns, type_="LoadBalancer", ports={PORT_NAME: (80, PORT_NAME)},
        annotations={
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        })
    service["spec"].update({"loadBalancerClass": "service.k8s.aws/nlb", "allocateLoadBalancerNodePorts": False})
    return service


def secrets_delivered(env: Environment) -> bool:
    return charts.EXTERNAL_SECRETS.enabled(env)


def secret_name(env: Environment) -> str:
    """The Secrets Manager secret holding the API's secrets (infra creates it, empty)."""
    return f"{charts.secret_prefix(env)}{APP}"


def _external_secret(env: Environment, meta: AppMeta, ns: str) -> Obj:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": k8s.metadata(meta=meta, name=SECRETS, namespace=ns),
        "spec": {
            "refreshInterval": f"{env.addons.external_secrets.refresh_interval_s}s",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": charts.SECRET_STORE},
            "target": {"name": SECRETS, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            # Every key of the secret's JSON becomes a file of the Secret.
            "dataFrom": [{"extract": {"key": secret_name(env)}}],
        },
    }


def _deployment(env: Environment, meta: AppMeta, ns: str, res: Obj, data: dict[str, str]) -> Obj:
    api = env.apps.inference_api
    main = k8s.container(
        name="api",
        image=env.image(IMAGE),
        pull_policy=env.images.pull_policy,
        args=["apps.api"],
        resources=res,
        config_map=CONFIG_MAP,
        ports={PORT_NAME: api.port},
        probes=k8s.probes(port=PORT_NAME),
        volume_mounts=[(SECRETS, SECRETS_DIR)] if secrets_delivered(env) else (),
    )
    secrets = [{"name": SECRETS, "secret": {"secretName": SECRETS, "optional": True, "defaultMode": 0o440}}]
    spec = k8s.pod_spec(
        service_account=SERVICE_ACCOUNT,
        volumes=secrets if secrets_delivered(env) else (),
        containers=[main],
        node_selector=k8s.cpu_node_selector(env),
        affinity=k8s.spread(meta),
    )
    template = k8s.pod_template(
        meta=meta,
        spec=spec,
        annotations={
            "checksum/config": k8s.config_checksum(data),
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(api.port),
            "prometheus.io/path": "/metrics",
        },
    )
    # Replicas start at the HPA's floor; Argo CD ignores the field afterwards (the HPA owns it).
    return k8s.deployment(
        meta=meta, name=DEPLOYMENT, namespace=ns, replicas=api.autoscaling.min_replicas, template=template,
        kube_score=[k8s.HPA_OWNS_REPLICAS],
    )


def _service(env: Environment, meta: AppMeta, ns: str) -> Obj:
    """The API's Service; `expose: node_port` (local clusters) also opens it on every node, the
    way in for load from outside the cluster (a kind node's address is on the host's network)."""
    api = env.apps.inference_api
    node_port = "node_port" in api.expose
    annotations = k8s.kube_score_ignores(("service-type", "a local cluster's way in from the host: it has no load "
                                          "balancer, and its nodes are reachable only from this machine")) if node_port else None
    return k8s.service(meta=meta.with_component("api", **{SCRAPE_LABEL: "true"}), name=SERVICE, namespace=ns,
                       ports={PORT_NAME: (api.port, PORT_NAME)}, type_="NodePort" if node_port else "ClusterIP",
                       annotations=annotations)


def _network_policy(env: Environment, meta: AppMeta, ns: str) -> Obj:
    api = env.apps.inference_api
    if api.expose == ["cluster_ip"]:
        sources: list[Obj] = [{"namespaceSelector": {}}]
    else:
        # Traffic from the NLB / ALB keeps client or node addresses: any source, API port only.
        sources = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    return k8s.network_policy(
        meta=meta,
        name=f"{APP}-allow",
        namespace=ns,
        pod_selector=meta.selector(),
        ingress=[{"from": sources, "ports": [{"protocol": "TCP", "port": api.port}]}],
        egress=k8s.egress_rules(env),
    )


def _ingress(env: Environment, meta: AppMeta, ns: str) -> Obj:
    api = env.apps.inference_api
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": k8s.metadata(
            meta=meta,
            name=INGRESS,
            namespace=ns,
            annotations={
                "alb.ingress.kubernetes.io/scheme": "internet-facing",
                "alb.ingress.kubernetes.io/target-type": "ip",
                "alb.ingress.kubernetes.io/healthcheck-path": "/readyz",
            },
        ),
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "host": api.ingress_host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": SERVICE, "port": {"name": PORT_NAME}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def _pdb(env: Environment, meta: AppMeta, ns: str) -> Obj:
    return k8s.pod_disruption_budget(meta=meta, name=DEPLOYMENT, namespace=ns,
                                     min_available=env.apps.inference_api.pdb_min_available)


def _role(meta: AppMeta, ns: str) -> Obj:
    # Least privilege: read its own ConfigMap, nothing else in the API.
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": k8s.metadata(meta=meta, name=SERVICE_ACCOUNT, namespace=ns),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CONFIG_MAP], "verbs": ["get"]}],
    }


def _role_binding(meta: AppMeta, ns: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": k8s.metadata(meta=meta, name=SERVICE_ACCOUNT, namespace=ns),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
    }


def _service_monitor(meta: AppMeta, ns: str) -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": k8s.metadata(meta=meta, name=DEPLOYMENT, namespace=ns),
        "spec": {
            "selector": {"matchLabels": {**meta.selector(), SCRAPE_LABEL: "true"}},
            "namespaceSelector": {"matchNames": [ns]},
            "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": "30s"}],
        },
    }
