"""Identity: one IAM role per workload, least privilege, bound to the workload's service
account by an EKS Pod Identity association or by IRSA, as the environment says.

What each workload may touch is a table, read by the tests:

    inference-api   models: read                 image: ml-inference-api
    batch-pipeline  data: read/write, models: read
    fraud-pipeline  models: read/write (model-build publishes)
    cleanup         data: read and delete (retention)

and each may pull only its own image. Namespaces and service accounts come from the
GitOps catalog (`argocd.render.service_accounts`), never restated here.
"""

from __future__ import annotations

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
    "cleanup": Access(data="delete"),
}


@dataclass(frozen=True)
class Workload:
    app: str
    namespace: str
    service_account: str
    image: str

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
        statements += policies.bucket_access(sid="Models", bucket_arn=models_bucket_arn, prefix=models_prefix,
                                             write=access.models == "read_write")
    if access.data != "none" or access.models != "none":
        writes = access.data in ("read_write", "delete") or access.models == "read_write"
        statements.append(policies.kms_use(key_arn=key_arn, write=writes))
    statements += policies.ecr_pull(repository_arns=[repository_arn])
    return policies.document(*statements)


@dataclass(frozen=True)
class IdentityArgs:
    cluster_name: pulumi.Input[str]
    cluster_name_literal: str
    account_id: pulumi.Input[str]
    mode: Literal["pod_identity", "irsa"]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    workloads: tuple[Workload, ...]
    data_bucket_arn: pulumi.Input[str]
    data_prefix: str
    models_bucket_arn: pulumi.Input[str]
    models_prefix: str
    key_arn: pulumi.Input[str]
    repository_arns: dict[str, pulumi.Input[str]]


class Identity(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role_arns = {}
        for w in args.workloads:
            trust = policies.workload_trust(
                mode=args.mode, account_id=args.account_id, cluster_name=args.cluster_name,
                oidc_provider_arn=args.oidc_provider_arn, oidc_issuer=args.oidc_issuer, namespace=w.namespace,
                service_account=w.service_account)
            role = aws.iam.Role(
                f"{name}-{w.app}",
                name=role_name(args.cluster_name_literal, w.app),
                description=f"{w.app}: {w.namespace}/{w.service_account} ({args.mode})",
                assume_role_policy=policies.as_json(trust),
                max_session_duration=3600,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-{w.app}-access",
                role=role.id,
                policy=policies.as_json(access_policy(
                    workload=w, data_bucket_arn=args.data_bucket_arn, data_prefix=args.data_prefix,
                    models_bucket_arn=args.models_bucket_arn, models_prefix=args.models_prefix,
                    key_arn=args.key_arn, repository_arn=args.repository_arns[w.image])),
                opts=child,
            )
            if args.mode == "pod_identity":
                aws.eks.PodIdentityAssociation(f"{name}-{w.app}-association", cluster_name=args.cluster_name,
                                               namespace=w.namespace, service_account=w.service_account,
                                               role_arn=role.arn, opts=child)
            self.role_arns[w.app] = role.arn
        self.register_outputs({"role_arns": self.role_arns})
