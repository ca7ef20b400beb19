"""Cluster: the EKS control plane through pulumi-eks, with secrets encrypted by a KMS key,
control-plane logs kept for the environment's retention, an OIDC provider (IRSA), access
entries instead of the aws-auth ConfigMap, and two EKS managed add-ons that must run before
any pod: the Pod Identity agent and the VPC CNI (with its network policy agent, so our
NetworkPolicies are enforced).

No default node group: node groups are their own component, so each is a plain
`aws.eks.NodeGroup` whose inputs a reviewer (and the tests) can read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from environments.model import Aws

TOKEN = "mlops:infra:Cluster"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class ClusterArgs:
    name: str
    kubernetes_version: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    private_subnet_ids: pulumi.Input[list[str]]
    endpoint_public: bool
    public_access_cidrs: tuple[str, ...]
    deletion_protection: bool
    log_types: tuple[str, ...]
    log_retention_days: int
    admin_principal_arns: tuple[str, ...] = field(default_factory=tuple)
    # The VPC CNI's network policy agent (addons.vpc_cni.network_policy).
    network_policy: bool = True
    # pulumi-eks tags what it creates inside its (multi-language) component with these.
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, aws_spec: Aws, *, tags: dict[str, str], vpc_id: pulumi.Input[str], public_subnet_ids: pulumi.Input[list[str]],
                  private_subnet_ids: pulumi.Input[list[str]], network_policy: bool) -> ClusterArgs:
        c = aws_spec.cluster
        return cls(name=c.name, kubernetes_version=c.kubernetes_version, vpc_id=vpc_id,
                   public_subnet_ids=public_subnet_ids, private_subnet_ids=private_subnet_ids,
                   endpoint_public=c.endpoint_public, public_access_cidrs=tuple(c.public_access_cidrs),
                   deletion_protection=c.deletion_protection, log_types=tuple(c.log_types),
                   log_retention_days=aws_spec.log_retention_days,
                   admin_principal_arns=tuple(c.admin_principal_arns), tags=dict(tags), network_policy=network_policy)


def vpc_cni_configuration(*, network_policy: bool) -> str:
    """The `vpc-cni` add-on's configuration values (the add-on's JSON schema wants strings)."""
    return json.dumps({"enableNetworkPolicy": "true" if network_policy else "false"})


def _server(kubeconfig_json: str) -> str:
    return str(json.loads(kubeconfig_json)["clusters"][0]["cluster"]["server"])


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    secrets_key_arn: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        key = aws.kms.Key(f"{name}-secrets-key", description=f"EKS secrets encryption for {args.name}",
                          enable_key_rotation=True, deletion_window_in_days=30, opts=child)
        aws.kms.Alias(f"{name}-secrets-key-alias", name=f"alias/{args.name}-secrets", target_key_id=key.key_id,
                      opts=child)
        # Created before the cluster so EKS writes into it instead of a never-expiring group of its own.
        logs = aws.cloudwatch.LogGroup(f"{name}-control-plane-logs", name=f"/aws/eks/{args.name}/cluster",
                                       retention_in_days=args.log_retention_days, opts=child)

        access_entries = {
            f"admin-{i}": eks.AccessEntryArgs(
                principal_arn=arn,
                access_policies={"cluster-admin": eks.AccessPolicyAssociationArgs(
                    policy_arn=ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                )},
            )
            for i, arn in enumerate(args.admin_principal_arns)
        }
        cluster = eks.Cluster(
            f"{name}-eks",
            name=args.name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            public_subnet_ids=args.public_subnet_ids,
            private_subnet_ids=args.private_subnet_ids,
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=args.endpoint_public,
            public_access_cidrs=list(args.public_access_cidrs) if args.endpoint_public else None,
            enabled_cluster_log_types=list(args.log_types),
            encryption_config_key_arn=key.arn,
            create_oidc_provider=True,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=access_entries or None,
            skip_default_node_group=True,
            # The CNI is the `vpc-cni` add-on below: pulumi-eks must not manage it too.
            use_default_vpc_cni=True,
            deletion_protection=args.deletion_protection,
            tags=args.tags,
            cluster_tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]),
        )
        # Known at preview, but carries the cluster as a dependency for everything that uses it.
        self.name = cluster.urn.apply(lambda _: args.name)
        aws.eks.Addon(f"{name}-pod-identity-agent", cluster_name=self.name, addon_name="eks-pod-identity-agent",
                      resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="PRESERVE", opts=child)
        # EKS installs the CNI itself; the managed add-on adopts it (OVERWRITE) to switch on its policy agent.
        aws.eks.Addon(f"{name}-vpc-cni", cluster_name=self.name, addon_name="vpc-cni",
                      configuration_values=vpc_cni_configuration(network_policy=args.network_policy),
                      resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="PRESERVE", opts=child)

        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.endpoint = cluster.kubeconfig_json.apply(_server)
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.oidc_issuer = cluster.oidc_issuer
        self.secrets_key_arn = key.arn
        # The group EKS creates for the cluster, which managed node groups without a launch template run in.
        self.node_security_group_id = cluster.eks_cluster.apply(lambda c: c.vpc_config.cluster_security_group_id)
        self.register_outputs({
            "name": self.name,
            "endpoint": self.endpoint,
            "oidc_issuer": self.oidc_issuer,
            "oidc_provider_arn": self.oidc_provider_arn,
        })
