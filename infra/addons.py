"""The AWS side of the platform add-ons Argo CD installs (the GitOps Bridge way): one
least-privilege role per enabled add-on that calls AWS, bound to its service account like the
apps' roles (`ServiceAccountTrust`), and the Secrets Manager secret External Secrets delivers
to the inference API.

Which add-ons call AWS, and as which service account, is `apps.addons.charts.calling_aws`;
what each may do is a table, read by the tests:

    aws-load-balancer-controller     our document: its own load balancers and security groups only
    aws-ebs-csi-driver               AmazonEBSCSIDriverPolicy
    aws-efs-csi-driver               our document: access points on our file system only
    external-secrets                 our document: secrets under the cluster's prefix only
    amazon-cloudwatch-observability  CloudWatchAgentServerPolicy
    cluster-autoscaler               our document: this cluster's node groups only
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from apps.addons.charts import EXTERNAL_SECRETS, calling_aws, secret_prefix
from environments import Environment
from infra import policies
from infra.errors import InfraError
from infra.identity import Moved, ServiceAccountTrust, role_name

TOKEN = "mlops:infra:PlatformAddons"
# The one application secret the store delivers today (seed 001: the API's credentials).
API_SECRET = "inference-api"


@dataclass(frozen=True)
class Scope:
    """What an add-on's document is scoped to."""

    cluster_name: str
    region: str
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    file_system_arn: pulumi.Input[str] | None
    secret_prefix: str
    secrets_key_arn: pulumi.Input[str] | None

    def file_system(self) -> pulumi.Input[str]:
        if self.file_system_arn is None:
            raise InfraError("aws-efs-csi-driver is enabled but no EFS file system was created for it: "
                             "addons.efs_csi_driver.enabled must create both (infra/platform.py)")
        return self.file_system_arn

    def secrets_key(self) -> pulumi.Input[str]:
        if self.secrets_key_arn is None:
            raise InfraError("external-secrets is enabled but its secrets' key was not created (infra/addons.py)")
        return self.secrets_key_arn


@dataclass(frozen=True)
class Grant:
    """An add-on's permissions: a document of ours, AWS managed policies, or both."""

    document: Callable[[Scope], policies.Document] | None = None
    managed: tuple[str, ...] = ()


GRANTS: dict[str, Grant] = {
    "aws-load-balancer-controller": Grant(document=lambda s: policies.load_balancer_controller(
        cluster_name=s.cluster_name, region=s.region, account_id=s.account_id, vpc_id=s.vpc_id)),
    # Volumes are encrypted with the account's AWS managed EBS key (the gp3 StorageClass names no
    # kmsKeyId), which needs no grant of ours: the managed policy suffices.
    "aws-ebs-csi-driver": Grant(managed=(policies.EBS_CSI_DRIVER_POLICY,)),
    "aws-efs-csi-driver": Grant(document=lambda s: policies.efs_csi_driver(
        file_system_arn=s.file_system(), region=s.region, account_id=s.account_id)),
    "external-secrets": Grant(document=lambda s: policies.external_secrets(
        secret_prefix=s.secret_prefix, region=s.region, account_id=s.account_id, key_arn=s.secrets_key())),
    # What AWS documents for Container Insights.
    "amazon-cloudwatch-observability": Grant(managed=(policies.CLOUDWATCH_AGENT_POLICY,)),
    "cluster-autoscaler": Grant(document=lambda s: policies.cluster_autoscaler(s.cluster_name)),
}


def grant(addon: str) -> Grant:
    try:
        return GRANTS[addon]
    except KeyError:
        raise InfraError(f"add-on {addon!r} calls AWS but has no IAM grant; expected one of {sorted(GRANTS)}: "
                         f"add its row to GRANTS in infra/addons.py") from None


@dataclass(frozen=True)
class PlatformAddonsArgs:
    env: Environment
    trust: ServiceAccountTrust
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    file_system_arn: pulumi.Input[str] | None = None
    # Where a stack created before add-ons had their own component holds the autoscaler's role.
    autoscaler_moved_from: Moved | None = None


class PlatformAddons(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]
    secret_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        env, child = args.env, pulumi.ResourceOptions(parent=self)
        assert env.aws is not None  # guardrails refuse an environment without an aws block
        cluster = env.aws.cluster.name
        addons = calling_aws(env)
        grants = {addon: grant(addon) for addon, _, _ in addons}  # every gap named before anything exists

        self.secret_arns, key_arn = {}, None
        if EXTERNAL_SECRETS.enabled(env):
            key_arn = self._secrets(name, env)

        scope = Scope(cluster_name=cluster, region=env.aws.region, account_id=args.account_id, vpc_id=args.vpc_id,
                      file_system_arn=args.file_system_arn, secret_prefix=secret_prefix(env), secrets_key_arn=key_arn)
        self.role_arns = {}
        for addon, namespace, service_account in addons:
            role = args.trust.role(
                f"{name}-{addon}", role_name=role_name(cluster, addon), description=addon, namespace=namespace,
                service_account=service_account, parent=self,
                moved_from=args.autoscaler_moved_from if addon == "cluster-autoscaler" else None)
            what = grants[addon]
            if what.document is not None:
                aws.iam.RolePolicy(f"{name}-{addon}-access", role=role.id,
                                   policy=policies.as_json(what.document(scope)), opts=child)
            for arn in what.managed:
                aws.iam.RolePolicyAttachment(f"{name}-{addon}-{arn.rsplit('/', 1)[1]}", role=role.name,
                                             policy_arn=arn, opts=child)
            self.role_arns[addon] = role.arn
        self.register_outputs({"role_arns": self.role_arns, "secret_arns": self.secret_arns})

    def _secrets(self, name: str, env: Environment) -> pulumi.Output[str]:
        """The API's secret (its value is an operator's, never in code or state) and its key."""
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=env.production)
        prefix = secret_prefix(env)
        key = aws.kms.Key(f"{name}-secretsmanager-key", description=f"Secrets Manager encryption for {prefix}*",
                          enable_key_rotation=True, deletion_window_in_days=30, opts=kept)
        aws.kms.Alias(f"{name}-secretsmanager-key-alias", name=f"alias/{prefix.strip('/')}-secretsmanager",
                      target_key_id=key.key_id, opts=kept)
        secret = aws.secretsmanager.Secret(
            f"{name}-{API_SECRET}-secret",
            name=f"{prefix}{API_SECRET}",
            description=(f"{API_SECRET}'s credentials, delivered by External Secrets. The value is put by an "
                         "operator (aws secretsmanager put-secret-value), never held in code or Pulumi state."),
            kms_key_id=key.arn,
            # A destroyed dev/staging stack frees the name at once, so the next `up` can recreate it.
            recovery_window_in_days=30 if env.production else 0,
            opts=kept,
        )
        self.secret_arns[API_SECRET] = secret.arn
        return key.arn
