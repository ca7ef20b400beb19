"""The cloud add-ons Argo CD installs from upstream Helm charts, the GitOps Bridge way: Pulumi
creates their AWS side (roles, the EFS file system) and the tree names it through the stack's
`CloudMetadata`; each chart is pinned in the environment (`addons.<name>.chart_version`).

Each add-on that calls AWS has one service account, the one its IAM role trusts (infra reads
`SERVICE_ACCOUNT` here, never restates it). Objects of our own that belong with a chart (its
StorageClass, the secret store) sync from the tree in the same Application.

    >>> from environments import load_environment
    >>> [c.name for c in CHARTS if c.enabled(load_environment("prod"))][:3]
    ['aws-load-balancer-controller', 'aws-ebs-csi-driver', 'aws-efs-csi-driver']
    >>> [c.name for c in CHARTS if c.enabled(load_environment("local"))]
    []
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps import k8s
from apps.cloud import CloudMetadata
from apps.k8s import AppMeta, Obj
from environments.model import ChartAddon, Environment, NodeGroup

KUBE_SYSTEM = "kube-system"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
SECRET_STORE = "aws-secrets-manager"


@dataclass(frozen=True)
class Chart:
    name: str  # the Application's app name, and the key of its role in CloudMetadata.role_arns
    namespace: str
    repo_url: str
    chart: str
    settings: Callable[[Environment], ChartAddon]
    values: Callable[[Environment, CloudMetadata], dict[str, Any]]
    # The service account whose pods call AWS (its IAM role trusts it); None: calls no AWS API.
    service_account: str | None = None
    # Our own objects synced beside the chart (from the tree, validated like the apps').
    objects: Callable[[Environment, CloudMetadata], list[Obj]] = field(default=lambda env, cloud: [])
    # Beyond `enabled`: what the environment must have for the add-on to mean anything.
    needed: Callable[[Environment], bool] = field(default=lambda env: True)

    def enabled(self, env: Environment) -> bool:
        """Cloud-only: their charts and images come from AWS and upstream registries."""
        return env.aws is not None and self.settings(env).enabled and self.needed(env)

    def version(self, env: Environment) -> str:
        return self.settings(env).chart_version

    def role_annotations(self, env: Environment, cloud: CloudMetadata) -> dict[str, str]:
        """IRSA wants the role on the service account; Pod Identity associations live in AWS."""
        if self.service_account is None or env.aws is None or env.aws.cluster.identity != "irsa":
            return {}
        arn = cloud.role_arn(self.name)
        if not arn:
            raise k8s.BuildError(f"env {env.name}: add-on {self.name} uses IRSA but the stack's metadata has no "
                                 f"role for it; render with the stack's outputs (--stack-outputs)")
        return {ROLE_ARN_ANNOTATION: arn}

    def service_account_values(self, env: Environment, cloud: CloudMetadata) -> dict[str, Any]:
        return {"create": True, "name": self.service_account, "annotations": self.role_annotations(env, cloud)}


def _aws(env: Environment) -> Any:
    assert env.aws is not None  # Chart.enabled: cloud environments only
    return env.aws


def _cluster(env: Environment) -> str:
    return str(_aws(env).cluster.name)


def _meta(env: Environment, name: str, component: str) -> AppMeta:
    return AppMeta(env=env, name=name, component=component)


# ---------------------------------------------------------------- AWS Load Balancer Controller


def _alb_values(env: Environment, cloud: CloudMetadata) -> dict[str, Any]:
    addon = env.addons.aws_load_balancer_controller
    return {
        "clusterName": _cluster(env),
        "region": _aws(env).region,
        "vpcId": cloud.require("vpc_id", needed_by="aws-load-balancer-controller"),
        "replicaCount": addon.replicas,
        "serviceAccount": LOAD_BALANCER_CONTROLLER.service_account_values(env, cloud),
        # Only Services that ask for it (ours: loadBalancerClass service.k8s.aws/nlb) become NLBs.
        "enableServiceMutatorWebhook": False,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "priorityClassName": "system-cluster-critical",
    }


LOAD_BALANCER_CONTROLLER = Chart(
    name="aws-load-balancer-controller", namespace=KUBE_SYSTEM, repo_url="https://aws.github.io/eks-charts",
    chart="aws-load-balancer-controller", settings=lambda env: env.addons.aws_load_balancer_controller,
    values=lambda env, cloud: _alb_values(env, cloud), service_account="aws-load-balancer-controller",
)


# ---------------------------------------------------------------- EBS CSI driver (gp3)


def _storage_class(meta: AppMeta, *, name: str, provisioner: str, parameters: dict[str, str], default: bool,
                   binding: str) -> Obj:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else None
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": k8s.metadata(meta=meta, name=name, namespace=None, annotations=annotations),
        "provisioner": provisioner,
        "parameters": parameters,
        # Data outlives a deleted claim: an operator deletes the volume on purpose.
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
        "volumeBindingMode": binding,
    }


def _ebs_objects(env: Environment, cloud: CloudMetadata) -> list[Obj]:
    meta = _meta(env, EBS_CSI_DRIVER.name, "storage")
    return [_storage_class(meta, name=env.addons.ebs_csi_driver.storage_class, provisioner="ebs.csi.aws.com",
                           parameters={"type": "gp3", "encrypted": "true", "fsType": "ext4"}, default=True,
                           binding="WaitForFirstConsumer")]


EBS_CSI_DRIVER: Chart = Chart(
    name="aws-ebs-csi-driver", namespace=KUBE_SYSTEM, repo_url="https://kubernetes-sigs.github.io/aws-ebs-csi-driver",
    chart="aws-ebs-csi-driver", settings=lambda env: env.addons.ebs_csi_driver,
    values=lambda env, cloud: {
        "controller": {"region": _aws(env).region,
                       "serviceAccount": EBS_CSI_DRIVER.service_account_values(env, cloud)},
        # Volumes attach on every node, the tainted GPU groups included.
        "node": {"tolerateAllTaints": True},
    },
    service_account="ebs-csi-controller-sa", objects=lambda env, cloud: _ebs_objects(env, cloud),
)


# ---------------------------------------------------------------- EFS CSI driver (efs-sc)


def _efs_objects(env: Environment, cloud: CloudMetadata) -> list[Obj]:
    meta = _meta(env, EFS_CSI_DRIVER.name, "storage")
    file_system = cloud.require("file_system_id", needed_by=f"StorageClass {env.addons.efs_csi_driver.storage_class}")
    # An access point per claim, owned by the uid the pipeline runs as: its pods write without root.
    uid = str(k8s.pod_security_context()["runAsUser"])
    return [_storage_class(meta, name=env.addons.efs_csi_driver.storage_class, provisioner="efs.csi.aws.com",
                           parameters={"provisioningMode": "efs-ap", "fileSystemId": file_system,
                                       "directoryPerms": "700", "uid": uid, "gid": uid,
                                       "basePath": f"/{env.name}"},
                           default=False, binding="Immediate")]


EFS_CSI_DRIVER: Chart = Chart(
    name="aws-efs-csi-driver", namespace=KUBE_SYSTEM, repo_url="https://kubernetes-sigs.github.io/aws-efs-csi-driver",
    chart="aws-efs-csi-driver", settings=lambda env: env.addons.efs_csi_driver,
    values=lambda env, cloud: {
        "controller": {"serviceAccount": EFS_CSI_DRIVER.service_account_values(env, cloud)},
        # The fraud GPU stages mount the shared volume on the tainted GPU nodes.
        "node": {"tolerations": [{"operator": "Exists"}]},
    },
    service_account="efs-csi-controller-sa", objects=lambda env, cloud: _efs_objects(env, cloud),
)


# ---------------------------------------------------------------- External Secrets Operator


def secret_prefix(env: Environment) -> str:
    """Secrets Manager names the store may read: `<cluster>/` (infra scopes the role to it)."""
    return f"{_cluster(env)}/"


def _secret_store(env: Environment, cloud: CloudMetadata) -> list[Obj]:
    meta = _meta(env, EXTERNAL_SECRETS.name, "store")
    return [{
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": k8s.metadata(meta=meta, name=SECRET_STORE, namespace=None),
        "spec": {
            # No auth block: the controller's own role (Pod Identity or IRSA), scoped to secret_prefix.
            "provider": {"aws": {"service": "SecretsManager", "region": _aws(env).region}},
            # Only the API's namespace may read through it (seed 001's secrets are the API's).
            "conditions": [{"namespaces": [env.apps.inference_api.namespace]}],
        },
    }]


EXTERNAL_SECRETS: Chart = Chart(
    name="external-secrets", namespace="external-secrets", repo_url="https://charts.external-secrets.io",
    chart="external-secrets", settings=lambda env: env.addons.external_secrets,
    values=lambda env, cloud: {
        "installCRDs": True,
        "serviceAccount": EXTERNAL_SECRETS.service_account_values(env, cloud),
        "priorityClassName": "system-cluster-critical",
    },
    service_account="external-secrets", objects=lambda env, cloud: _secret_store(env, cloud),
)


# ---------------------------------------------------------------- CloudWatch Container Insights


CLOUDWATCH_OBSERVABILITY: Chart = Chart(
    name="amazon-cloudwatch-observability", namespace="amazon-cloudwatch",
    repo_url="https://aws-observability.github.io/helm-charts", chart="amazon-cloudwatch-observability",
    settings=lambda env: env.addons.cloudwatch_observability,
    values=lambda env, cloud: {
        "clusterName": _cluster(env),
        "region": _aws(env).region,
        "agent": {"serviceAccount": {"annotations": CLOUDWATCH_OBSERVABILITY.role_annotations(env, cloud)}},
    },
    service_account="cloudwatch-agent",
)


# ---------------------------------------------------------------- node groups: autoscaler, GPUs


def node_group_name(cluster_name: str, group: str) -> str:
    return f"{cluster_name}-{group}"


def device_plugin_values(*, cluster_name: str, gpu_groups: dict[str, NodeGroup]) -> dict[str, Any]:
    """Run the plugin only on the GPU groups (the chart's default affinity expects NFD labels we do not run)."""
    tolerations = [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
                   for t in {t for g in gpu_groups.values() for t in g.taints}]
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": NODEGROUP_LABEL, "operator": "In",
                                  "values": sorted(node_group_name(cluster_name, g) for g in gpu_groups)}],
        }]}}},
        "tolerations": sorted(tolerations, key=lambda t: (t["key"], t["effect"])),
        "priorityClassName": "system-node-critical",
    }


NVIDIA_DEVICE_PLUGIN = Chart(
    name="nvidia-device-plugin", namespace=KUBE_SYSTEM, repo_url="https://nvidia.github.io/k8s-device-plugin",
    chart="nvidia-device-plugin", settings=lambda env: env.addons.nvidia_device_plugin,
    values=lambda env, cloud: device_plugin_values(cluster_name=_cluster(env), gpu_groups=env.gpu_node_groups),
    needed=lambda env: env.has_gpu,
)


CLUSTER_AUTOSCALER: Chart = Chart(
    name="cluster-autoscaler", namespace=KUBE_SYSTEM, repo_url="https://kubernetes.github.io/autoscaler",
    chart="cluster-autoscaler", settings=lambda env: env.addons.cluster_autoscaler,
    values=lambda env, cloud: {
        "cloudProvider": "aws",
        "awsRegion": _aws(env).region,
        "autoDiscovery": {"clusterName": _cluster(env)},
        "rbac": {"serviceAccount": CLUSTER_AUTOSCALER.service_account_values(env, cloud)},
        # GPU groups scale from zero: pick the group that wastes least, keep similar groups balanced.
        "extraArgs": {"expander": "least-waste", "balance-similar-node-groups": "true",
                      "skip-nodes-with-system-pods": "false"},
        "priorityClassName": "system-cluster-critical",
    },
    service_account="cluster-autoscaler",
)


CHARTS: tuple[Chart, ...] = (
    LOAD_BALANCER_CONTROLLER,
    EBS_CSI_DRIVER,
    EFS_CSI_DRIVER,
    EXTERNAL_SECRETS,
    CLOUDWATCH_OBSERVABILITY,
    CLUSTER_AUTOSCALER,
    NVIDIA_DEVICE_PLUGIN,
)


def calling_aws(env: Environment) -> list[tuple[str, str, str]]:
    """(add-on, namespace, service account) of every enabled add-on that calls AWS: what infra
    gives an IAM role and binds by Pod Identity or IRSA."""
    return [(c.name, c.namespace, c.service_account) for c in CHARTS if c.enabled(env) and c.service_account]
