"""The whole stack of one environment, as one component: guardrails first, then tagging,
network, cluster, node groups, registries and storage, the shared file system, identity (the
apps' roles), the add-ons' AWS side, and the GitOps bootstrap. What the GitOps tree must name
leaves as one object, the `gitops_metadata` output (`apps.cloud.CloudMetadata`).

    # __main__.py, the whole Pulumi program:
    deploy(load_environment(pulumi.get_stack()))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from apps.addons.charts import EFS_CSI_DRIVER
from apps.cloud import STACK_OUTPUT, CloudMetadata
from argocd import catalog
from argocd.render import service_accounts
from environments import Environment
from environments.model import IMAGE_DIGEST
from infra import guardrails
from infra.addons import PlatformAddons, PlatformAddonsArgs
from infra.cluster import Cluster, ClusterArgs
from infra.errors import InfraError, LocalStackError
from infra.gitops import GitOpsBootstrap, GitOpsBootstrapArgs, HelmInstall
from infra.identity import Identity, IdentityArgs, Moved, ServiceAccountTrust, Workload
from infra.local import CONFIG, LocalPlatform, LocalTarget
from infra.network import Network, NetworkArgs
from infra.nodegroups import NodeGroups, NodeGroupsArgs
from infra.sharedfs import SharedFileSystem, SharedFileSystemArgs
from infra.storage import BucketRef, RegistriesAndStorage, RegistriesAndStorageArgs
from infra.tagging import Tagging, TaggingArgs

TOKEN = "mlops:infra:MlPlatform"
PROJECT = "ml-platform"


def app_images() -> dict[str, str]:
    """app name -> the image it runs, from the GitOps catalog (one repository per distinct image)."""
    return {app.name: app.module.IMAGE for app in catalog.APPS}


# The stack config `mlops images push <env>` sets: image name -> the digest its push reported.
IMAGE_DIGESTS = "imageDigests"


@dataclass(frozen=True)
class MlPlatformArgs:
    env: Environment
    # The stack's config mlops:imageDigests: the tree names every app image by digest.
    image_digests: dict[str, str]


def required_digests(env: Environment, digests: dict[str, str], images: set[str]) -> dict[str, str]:
    """The digests of `images`, or one line naming what is missing and what to run."""
    bad = sorted(name for name, digest in digests.items() if not re.fullmatch(IMAGE_DIGEST, str(digest)))
    if bad:
        raise InfraError(f"stack {env.name}: {CONFIG}:{IMAGE_DIGESTS}.{bad[0]} is not a sha256 digest "
                         f"(sha256:<64 hex>): {digests[bad[0]]!r}")
    missing = sorted(images - set(digests))
    if missing:
        raise InfraError(
            f"stack {env.name}: no digest for image(s) {', '.join(missing)} in stack config "
            f"{CONFIG}:{IMAGE_DIGESTS}; push them first: `mlops images push {env.name}` (it pushes to the "
            "stack's ECR repositories and sets the config), then `pulumi up` again")
    return {name: digests[name] for name in sorted(images)}


class MlPlatform(pulumi.ComponentResource):
    network: Network
    cluster: Cluster
    node_groups: NodeGroups
    storage: RegistriesAndStorage
    shared_fs: SharedFileSystem | None
    identity: Identity
    addons: PlatformAddons
    gitops: GitOpsBootstrap
    # The GitOps Bridge's metadata: exactly the fields of apps.cloud.CloudMetadata.
    cloud_metadata: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: MlPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        env = args.env
        # Guardrails before the component registers: a refused environment creates nothing at all
        # (and one without an aws block is refused with NoCloudError).
        guardrails.enforce(env)
        digests = required_digests(env, args.image_digests, set(app_images().values()))
        super().__init__(TOKEN, name, None, opts)
        spec = env.aws
        assert spec is not None  # for the type checker: enforce() refused it otherwise

        tagging = Tagging(f"{name}-tagging", TaggingArgs.from_env(env), opts=pulumi.ResourceOptions(parent=self))
        aws_opts = pulumi.ResourceOptions(parent=self, providers=[tagging.provider])
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=tagging.provider)).account_id

        network = NetworkArgs.from_spec(
            cluster_name=spec.cluster.name, region=spec.region, network=spec.network,
            log_retention_days=spec.log_retention_days, account_id=account_id)
        self.network = Network(f"{name}-network", network, opts=aws_opts)

        self.cluster = Cluster(f"{name}-cluster", ClusterArgs.from_spec(
            spec, tags=tagging.tags, vpc_id=self.network.vpc_id, public_subnet_ids=self.network.public_subnet_ids,
            private_subnet_ids=self.network.private_subnet_ids, network_policy=env.addons.vpc_cni.network_policy),
            opts=aws_opts)
        kubernetes = k8s.Provider(f"{name}-kubernetes", kubeconfig=self.cluster.kubeconfig,
                                  enable_server_side_apply=True, opts=pulumi.ResourceOptions(parent=self))

        self.node_groups = NodeGroups(f"{name}-nodes", NodeGroupsArgs(
            cluster_name=self.cluster.name, cluster_name_literal=spec.cluster.name,
            subnet_ids=self.network.private_subnet_ids, groups=dict(env.node_groups)), opts=aws_opts)

        images = app_images()
        self.storage = RegistriesAndStorage(f"{name}-storage", RegistriesAndStorageArgs.from_env(
            env, images=tuple(sorted(set(images.values())))), opts=aws_opts)

        self.shared_fs = None
        if EFS_CSI_DRIVER.enabled(env):  # the file system exists exactly when its driver does
            self.shared_fs = SharedFileSystem(f"{name}-sharedfs", SharedFileSystemArgs.from_env(
                env, vpc_id=self.network.vpc_id, subnet_ids=self.network.private_subnet_ids,
                subnet_count=sum(1 for s in network.subnets if s.tier == "private"),
                node_security_group_id=self.cluster.node_security_group_id), opts=aws_opts)

        trust = ServiceAccountTrust(mode=spec.cluster.identity, account_id=account_id, cluster_name=self.cluster.name,
                                    oidc_provider_arn=self.cluster.oidc_provider_arn,
                                    oidc_issuer=self.cluster.oidc_issuer)
        data, models = BucketRef.parse(env.storage.data_uri), BucketRef.parse(env.storage.models_uri)
        workloads = tuple(Workload(app=a, namespace=ns, service_account=sa, image=images[a],
                                   model_families=tuple(catalog.model_families(env, a)))
                          for a, ns, sa in service_accounts(env))
        self.identity = Identity(f"{name}-identity", IdentityArgs(
            cluster_name_literal=spec.cluster.name, trust=trust,
            workloads=workloads, data_bucket_arn=self.storage.data_bucket_arn, data_prefix=data.prefix,
            models_bucket_arn=self.storage.models_bucket_arn, models_prefix=models.prefix,
            key_arn=self.storage.key_arn, repository_arns=self.storage.repository_arns), opts=aws_opts)
        self.addons = PlatformAddons(f"{name}-addons", PlatformAddonsArgs(
            env=env, trust=trust, account_id=account_id, vpc_id=self.network.vpc_id,
            file_system_arn=self.shared_fs.file_system_arn if self.shared_fs else None,
            autoscaler_moved_from=Moved(f"{name}-nodes-autoscaler", self.node_groups)), opts=aws_opts)

        clash = sorted(set(self.identity.role_arns) & set(self.addons.role_arns))
        if clash:
            raise InfraError(f"apps and add-ons share the name(s) {clash}: CloudMetadata.role_arns needs one role per name")
        role_arns = {**self.identity.role_arns, **self.addons.role_arns}
        # Validated as the tree will read it: a field the model lacks fails here, not in a render.
        self.cloud_metadata = pulumi.Output.all(
            registry=self.storage.registry,
            image_digests=digests,
            role_arns=pulumi.Output.all(**role_arns),
            vpc_id=self.network.vpc_id,
            file_system_id=self.shared_fs.file_system_id if self.shared_fs else None,
        ).apply(lambda fields: CloudMetadata.model_validate(fields).model_dump())
        self.gitops = GitOpsBootstrap(f"{name}-gitops", GitOpsBootstrapArgs.for_env(
            env, install=HelmInstall.of(env, kubernetes), cloud=self.cloud_metadata),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_groups]))

        self.outputs = stack_outputs(self)
        self.register_outputs(self.outputs)


def stack_outputs(p: MlPlatform) -> dict[str, Any]:
    """The stack outputs a user (and the harness's `existing` cluster provider) reads."""
    return {
        "vpc_id": p.network.vpc_id,
        "public_subnet_ids": p.network.public_subnet_ids,
        "private_subnet_ids": p.network.private_subnet_ids,
        "cluster_name": p.cluster.name,
        "cluster_endpoint": p.cluster.endpoint,
        "oidc_issuer": p.cluster.oidc_issuer,
        "kubeconfig": p.cluster.kubeconfig,
        "node_group_names": p.node_groups.names,
        "ecr_repository_urls": p.storage.repository_urls,
        "image_registry": p.storage.registry,
        "data_bucket": p.storage.data_bucket,
        "models_bucket": p.storage.models_bucket,
        "workload_role_arns": p.identity.role_arns,
        "addon_role_arns": p.addons.role_arns,
        "file_system_id": p.shared_fs.file_system_id if p.shared_fs else None,
        STACK_OUTPUT: p.cloud_metadata,
        "gitops_repo": p.gitops.repo_url,
        "gitops_commit": p.gitops.commit,
    }


def deploy(env: Environment, local: LocalTarget | None = None) -> MlPlatform | LocalPlatform:
    """The Pulumi program for one environment; exports the stack outputs.

    An environment without an `aws` block (`local`) declares no AWS resource: only the
    Kubernetes half, on the cluster `local` names (the program's entry reads it from the stack's
    config: `__main__.py`, or the harness's inline program)."""
    platform: MlPlatform | LocalPlatform
    if env.aws is None:
        if local is None:
            raise LocalStackError(f"environment {env.name!r} has no aws block: its stack needs a local target "
                                  "(LocalTarget.from_config() in the program's entry)")
        pulumi.log.info(f"environment {env.name!r} has no aws block: no AWS resources are declared")
        platform = LocalPlatform(env.name, env, local)
    else:
        digests = pulumi.Config(CONFIG).get_object(IMAGE_DIGESTS) or {}
        if not isinstance(digests, dict):
            raise InfraError(f"stack {env.name}: {CONFIG}:{IMAGE_DIGESTS} must be an object (image name -> "
                             f"sha256 digest), got {type(digests).__name__}")
        platform = MlPlatform(env.name, MlPlatformArgs(env=env, image_digests=digests))
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
    return platform
