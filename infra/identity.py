"""Identity: one IAM role per workload, least privilege, bound to the workload's service
account by an EKS Pod Identity association or by IRSA, as the environment says.

What each workload may touch is a table, read by the tests:

    inference-api   models: read                 image: ml-inference-api
    batch-pipeline  data: read/write, models: read
    fraud-pipeline  models: read/write (model-build publishes)
    model-bootstrap models: read/write (each family's first model)
    cleanup         data: read and delete (retention)

where models means only the registries of the families the workload serves
(`argocd.catalog.model_families`), and each may pull only its own image. Namespaces and service accounts come from the
GitOps catalog (`argocd.render.service_accounts`), never restated here. The add-ons' roles
(`infra/addons.py`) are bound the same way, by `ServiceAccountTrust.role`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.errors import InfraError

TOKEN = "mlops:infra:Identity"
DataAccess = Literal["none", "read", "read_write", "delete"]
ModelAccess = Literal["none", "read", "read_write"]


@dataclass(frozen=True)
class Access:
    data: DataAccess = "none"
    models: ModelAccess = "none"


ACCESS: dict[str, Access] = {
    "inference-api": Access(models="read"),
    "batch-pipeline": Access(data="read_write", models="read"),
    "fraud-pipeline": Access(models="read_write"),
    "model-bootstrap": Access(models="read_write"),
    "cleanup": Access(data="delete"),
}


@dataclass(frozen=True)
class Workload:
    app: str
    namespace: str
    service_account: str
    image: str
    # The model families whose registries (models prefix/<family>/) it may touch.
    model_families: tuple[str, ...] = ()

    @property
    def access(self) -> Access:
        try:
            return ACCESS[self.app]
        except KeyError:
            raise InfraError(
                f"app {self.app!r} has no IAM access defined; expected one of {sorted(ACCESS)}: "
                f"add its row to ACCESS in infra/identity.py"
            ) from None


def role_name(cluster_name: str, app: str) -> str:
    return f"{cluster_name}-{app}"[:64]


def access_policy(*, workload: Workload, data_bucket_arn: pulumi.Input[str], data_prefix: str,
                  models_bucket_arn: pulumi.Input[str], models_prefix: str, key_arn: pulumi.Input[str],
                  repository_arn: pulumi.Input[str]) -> policies.Document:
    """The workload's whole permission set: its buckets (scoped to the env's prefix), the key, its image."""
    access, statements = workload.access, []
    if access.data != "none":
        statements += policies.bucket_access(sid="Data", bucket_arn=data_bucket_arn, prefix=data_prefix,
                                             write=access.data == "read_write", delete_only=access.data == "delete")
    if access.models != "none":
        if not workload.model_families:
            raise InfraError(f"app {workload.app!r} reads models but serves no model family: name its families "
                             "in argocd.catalog.model_families")
        statements += policies.bucket_access(sid="Models", bucket_arn=models_bucket_arn,
                                             prefix=[f"{models_prefix}{f}/" for f in workload.model_families],
                                             write=access.models == "read_write")
    if access.data != "none" or access.models != "none":
        writes = access.data in ("read_write", "delete") or access.models == "read_write"
        statements.append(policies.kms_use(key_arn=key_arn, write=writes))
    statements += policies.ecr_pull(repository_arns=[repository_arn])
    return policies.document(*statements)


@dataclass(frozen=True)
class Moved:
    """A role's former resource name and parent component (and its association's, with the suffix)."""

    name: str
    parent: pulumi.Resource

    def aliases(self, suffix: str) -> list[pulumi.Alias]:
        return [pulumi.Alias(name=f"{self.name}{suffix}", parent=self.parent)]


@dataclass(frozen=True)
class ServiceAccountTrust:
    """How one cluster's service accounts assume IAM roles: Pod Identity or IRSA, as the env says."""

    mode: Literal["pod_identity", "irsa"]
    account_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]

    def role(self, resource_name: str, *, role_name: str, description: str, namespace: str, service_account: str,
             parent: pulumi.Resource, moved_from: Moved | None = None) -> aws.iam.Role:
        """A role only `namespace/service_account` of this cluster assumes (and, under Pod
        Identity, the association that hands it to that service account's pods).

        moved_from: where a stack already holds this role; the role's name is fixed and an
        association is unique per service account, so a replacement would collide with itself."""
        trust = policies.workload_trust(
            mode=self.mode, account_id=self.account_id, cluster_name=self.cluster_name,
            oidc_provider_arn=self.oidc_provider_arn, oidc_issuer=self.oidc_issuer, namespace=namespace,
            service_account=service_account)
        role = aws.iam.Role(
            resource_name,
            name=role_name,
            description=f"{description}: {namespace}/{service_account} ({self.mode})",
            assume_role_policy=policies.as_json(trust),
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=parent, aliases=moved_from.aliases("") if moved_from else None),
        )
        if self.mode == "pod_identity":
            aws.eks.PodIdentityAssociation(
                f"{resource_name}-association", cluster_name=self.cluster_name, namespace=namespace,
                service_account=service_account, role_arn=role.arn,
                opts=pulumi.ResourceOptions(parent=parent,
                                            aliases=moved_from.aliases("-association") if moved_from else None))
        return role


@dataclass(frozen=True)
class IdentityArgs:
    cluster_name_literal: str
    trust: ServiceAccountTrust
    workloads: tuple[Workload, ...]
    data_bucket_arn: pulumi.Input[str]
    data_prefix: str
    models_bucket_arn: pulumi.Input[str]
    models_prefix: str
    key_arn: pulumi.Input[str]
    repository_arns: Mapping[str, pulumi.Input[str]]


class Identity(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role_arns = {}
        for w in args.workloads:
            role = args.trust.role(f"{name}-{w.app}", role_name=role_name(args.cluster_name_literal, w.app),
                                   description=w.app, namespace=w.namespace, service_account=w.service_account,
                                   parent=self)
            aws.iam.RolePolicy(
                f"{name}-{w.app}-access",
                role=role.id,
                policy=policies.as_json(access_policy(
                    workload=w, data_bucket_arn=args.data_bucket_arn, data_prefix=args.data_prefix,
                    models_bucket_arn=args.models_bucket_arn, models_prefix=args.models_prefix,
                    key_arn=args.key_arn, repository_arn=args.repository_arns[w.image])),
                opts=child,
            )
            self.role_arns[w.app] = role.arn
        self.register_outputs({"role_arns": self.role_arns})
