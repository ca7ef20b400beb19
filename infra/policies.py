"""IAM policy documents as plain data: pure builders, so tests read exactly what AWS gets.

Every document names its resources; `*` appears only where AWS allows nothing narrower
(`ecr:GetAuthorizationToken`, Describe calls), or with a condition that narrows it to what this
cluster created (the add-ons' tag conditions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

Document = dict[str, Any]

ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
S3_READ_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
S3_WRITE_OBJECT_ACTIONS = ["s3:PutObject", "s3:DeleteObject"]
# AWS managed policies some add-ons get as they are (what AWS documents for them).
EBS_CSI_DRIVER_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
CLOUDWATCH_AGENT_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
# The tag the AWS Load Balancer Controller puts on everything it creates, and the EFS CSI
# driver on its access points.
ELB_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
EFS_CLUSTER_TAG = "efs.csi.aws.com/cluster"


def document(*statements: dict[str, Any]) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def as_json(doc: Document) -> pulumi.Output[str]:
    """A document that may hold Outputs (ARNs), serialised once they are known."""
    return pulumi.Output.json_dumps(doc)


def service_trust(service: str, *, actions: list[str] | None = None, conditions: dict[str, Any] | None = None) -> Document:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": actions or ["sts:AssumeRole"],
    }
    if conditions:
        statement["Condition"] = conditions
    return document(statement)


def pod_identity_trust(*, account_id: pulumi.Input[str], cluster_name: pulumi.Input[str], namespace: str,
                       service_account: str) -> Document:
    """EKS Pod Identity: the agent assumes the role and tags the session with the cluster, namespace and
    service account; the role accepts only this one (the session-tag conditions of the EKS user guide)."""
    return service_trust(
        "pods.eks.amazonaws.com",
        actions=["sts:AssumeRole", "sts:TagSession"],
        conditions={"StringEquals": {
            "aws:SourceAccount": account_id,
            "aws:RequestTag/eks-cluster-name": cluster_name,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }},
    )


def irsa_trust(*, oidc_provider_arn: pulumi.Input[str], issuer_host: pulumi.Input[str], namespace: str,
               service_account: str) -> Document:
    """IRSA: only the named service account of the named namespace, only for STS."""
    # The condition keys embed the issuer host, known only once the cluster exists.
    condition = pulumi.Output.from_input(issuer_host).apply(lambda host: {
        "StringEquals": {
            f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{host}:aud": "sts.amazonaws.com",
        }
    })
    return document({
        "Effect": "Allow",
        "Principal": {"Federated": oidc_provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    })


def bucket_access(*, sid: str, bucket_arn: pulumi.Input[str], prefix: str | Sequence[str], write: bool,
                  delete_only: bool = False) -> list[dict[str, Any]]:
    """List one prefix (or several) of one bucket; read (and write) its objects."""
    prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
    actions = list(S3_READ_OBJECT_ACTIONS)
    if write:
        actions += S3_WRITE_OBJECT_ACTIONS
    if delete_only:
        actions = ["s3:GetObject", "s3:DeleteObject"]
    listing: dict[str, Any] = {"Sid": f"{sid}List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn}
    if prefixes != [""]:
        listing["Condition"] = {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}
        objects: Any = [pulumi.Output.concat(bucket_arn, "/", p, "*") for p in prefixes]
        objects = objects[0] if len(objects) == 1 else objects
    else:
        objects = pulumi.Output.concat(bucket_arn, "/*")
    return [listing, {"Sid": f"{sid}Objects", "Effect": "Allow", "Action": actions, "Resource": objects}]


def kms_use(*, key_arn: pulumi.Input[str], write: bool) -> dict[str, Any]:
    actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if write else [])
    return {"Sid": "StorageKey", "Effect": "Allow", "Action": actions, "Resource": key_arn}


def ecr_pull(*, repository_arns: list[pulumi.Input[str]]) -> list[dict[str, Any]]:
    return [
        # AWS offers no narrower resource for the registry login token.
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "EcrPull", "Effect": "Allow", "Action": ECR_PULL_ACTIONS, "Resource": repository_arns},
    ]


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> Document:
    """Bucket policy: refuse any request not made over TLS."""
    return document({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })


def flow_logs_write(log_group_arn: pulumi.Input[str]) -> Document:
    return document({
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        "Resource": [log_group_arn, pulumi.Output.concat(log_group_arn, ":*")],
    })


def workload_trust(*, mode: str, account_id: pulumi.Input[str], cluster_name: pulumi.Input[str],
                   oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str,
                   service_account: str) -> Document:
    """The trust of a role one service account's pods assume, by Pod Identity or by IRSA."""
    if mode == "pod_identity":
        return pod_identity_trust(account_id=account_id, cluster_name=cluster_name, namespace=namespace,
                                  service_account=service_account)
    return irsa_trust(oidc_provider_arn=oidc_provider_arn, issuer_host=oidc_issuer, namespace=namespace,
                      service_account=service_account)


def cluster_autoscaler(cluster_name: str) -> Document:
    """Read what it must to plan; change only the groups tagged as this cluster's (EKS tags them)."""
    return document(
        # Describe calls have no resource-level permissions in AWS.
        {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup"]},
        {"Sid": "ScaleOwnGroups", "Effect": "Allow", "Resource": "*",
         "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
    )


def _arn(service: str, region: pulumi.Input[str], account_id: pulumi.Input[str], resource: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat(f"arn:aws:{service}:", region, ":", account_id, ":", resource)


def load_balancer_controller(*, cluster_name: str, region: str, account_id: pulumi.Input[str],
                             vpc_id: pulumi.Input[str]) -> Document:
    """The AWS Load Balancer Controller, after the upstream controller's IAM policy
    (kubernetes-sigs/aws-load-balancer-controller docs/install/iam_policy.json), narrower:
    it creates load balancers, target groups, listeners, rules and security groups only
    tagged as this cluster's, and changes or deletes only what carries that tag."""
    elb = "elasticloadbalancing"
    security_groups = _arn("ec2", region, account_id, "security-group/*")
    created = {"StringEquals": {f"aws:RequestTag/{ELB_CLUSTER_TAG}": cluster_name}}
    owned = {"StringEquals": {f"aws:ResourceTag/{ELB_CLUSTER_TAG}": cluster_name}}
    return document(
        {"Sid": "ServiceLinkedRole", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}},
        # Describe calls have no resource-level permissions in AWS.
        {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
            "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
            "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeRouteTables",
            "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools", "ec2:DescribeCoipPools", "ec2:GetCoipPoolUsage",
            f"{elb}:DescribeLoadBalancers", f"{elb}:DescribeLoadBalancerAttributes", f"{elb}:DescribeListeners",
            f"{elb}:DescribeListenerAttributes", f"{elb}:DescribeListenerCertificates",
            f"{elb}:DescribeSSLPolicies", f"{elb}:DescribeRules", f"{elb}:DescribeTargetGroups",
            f"{elb}:DescribeTargetGroupAttributes", f"{elb}:DescribeTargetHealth", f"{elb}:DescribeTags",
            f"{elb}:DescribeTrustStores", f"{elb}:DescribeCapacityReservation"]},
        # Certificates for HTTPS listeners, and whether a WAF ACL or Shield guards a load balancer. Reads
        # only: our Ingress names no WAF ACL or Shield protection, so the controller changes none.
        {"Sid": "ReadIntegrations", "Effect": "Allow", "Resource": "*", "Action": [
            "acm:ListCertificates", "acm:DescribeCertificate", "iam:ListServerCertificates",
            "iam:GetServerCertificate", "cognito-idp:DescribeUserPoolClient", "waf-regional:GetWebACL",
            "waf-regional:GetWebACLForResource", "wafv2:GetWebACL", "wafv2:GetWebACLForResource",
            "shield:GetSubscriptionState", "shield:DescribeProtection"]},
        {"Sid": "CreateSecurityGroups", "Effect": "Allow", "Action": "ec2:CreateSecurityGroup",
         "Resource": [security_groups, _arn("ec2", region, account_id, pulumi.Output.concat("vpc/", vpc_id))],
         "Condition": created},
        {"Sid": "TagSecurityGroupsOnCreate", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": security_groups,
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup",
                                        f"aws:RequestTag/{ELB_CLUSTER_TAG}": cluster_name}}},
        {"Sid": "ManageOwnSecurityGroups", "Effect": "Allow", "Resource": security_groups,
         "Action": ["ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSecurityGroup"], "Condition": owned},
        # The controller also opens the nodes' security group (not its own, so untagged) to its load
        # balancers: rules of groups in this cluster's VPC, none beyond it.
        {"Sid": "SecurityGroupRulesInClusterVpc", "Effect": "Allow", "Resource": security_groups,
         "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
         "Condition": {"ArnEquals": {"ec2:Vpc": _arn("ec2", region, account_id, pulumi.Output.concat("vpc/", vpc_id))}}},
        {"Sid": "CreateLoadBalancers", "Effect": "Allow", "Resource": "*", "Condition": created, "Action": [
            f"{elb}:CreateLoadBalancer", f"{elb}:CreateTargetGroup", f"{elb}:CreateListener", f"{elb}:CreateRule"]},
        {"Sid": "TagLoadBalancersOnCreate", "Effect": "Allow", "Action": f"{elb}:AddTags", "Resource": "*",
         "Condition": {"StringEquals": {
             f"{elb}:CreateAction": ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener", "CreateRule"],
             f"aws:RequestTag/{ELB_CLUSTER_TAG}": cluster_name}}},
        {"Sid": "ManageOwnLoadBalancers", "Effect": "Allow", "Resource": "*", "Condition": owned, "Action": [
            f"{elb}:ModifyLoadBalancerAttributes", f"{elb}:SetIpAddressType", f"{elb}:SetSecurityGroups",
            f"{elb}:SetSubnets", f"{elb}:DeleteLoadBalancer", f"{elb}:ModifyCapacityReservation",
            f"{elb}:ModifyTargetGroup", f"{elb}:ModifyTargetGroupAttributes", f"{elb}:DeleteTargetGroup",
            f"{elb}:RegisterTargets", f"{elb}:DeregisterTargets",
            f"{elb}:ModifyListener", f"{elb}:ModifyListenerAttributes", f"{elb}:DeleteListener",
            f"{elb}:AddListenerCertificates", f"{elb}:RemoveListenerCertificates",
            f"{elb}:ModifyRule", f"{elb}:SetRulePriorities", f"{elb}:DeleteRule",
            f"{elb}:AddTags", f"{elb}:RemoveTags"]},
    )


def efs_csi_driver(*, file_system_arn: pulumi.Input[str], region: str, account_id: pulumi.Input[str]) -> Document:
    """The EFS CSI controller: an access point per claim on our one file system, created and
    deleted only with the driver's tag (the upstream driver policy, scoped to the file system)."""
    access_points = _arn("elasticfilesystem", region, account_id, "access-point/*")
    return document(
        {"Sid": "DescribeFileSystem", "Effect": "Allow", "Resource": file_system_arn, "Action": [
            "elasticfilesystem:DescribeAccessPoints", "elasticfilesystem:DescribeFileSystems",
            "elasticfilesystem:DescribeMountTargets"]},
        # No resource-level permissions in AWS.
        {"Sid": "DescribeZones", "Effect": "Allow", "Action": "ec2:DescribeAvailabilityZones", "Resource": "*"},
        {"Sid": "CreateAccessPoints", "Effect": "Allow", "Action": "elasticfilesystem:CreateAccessPoint",
         "Resource": file_system_arn, "Condition": {"StringEquals": {f"aws:RequestTag/{EFS_CLUSTER_TAG}": "true"}}},
        {"Sid": "TagAccessPoints", "Effect": "Allow", "Action": "elasticfilesystem:TagResource",
         "Resource": access_points, "Condition": {"StringEquals": {f"aws:ResourceTag/{EFS_CLUSTER_TAG}": "true"}}},
        {"Sid": "DeleteOwnAccessPoints", "Effect": "Allow", "Action": "elasticfilesystem:DeleteAccessPoint",
         "Resource": access_points, "Condition": {"StringEquals": {f"aws:ResourceTag/{EFS_CLUSTER_TAG}": "true"}}},
    )


def external_secrets(*, secret_prefix: str, region: str, account_id: pulumi.Input[str],
                     key_arn: pulumi.Input[str]) -> Document:
    """External Secrets Operator: read the secrets under this cluster's prefix, decrypt them only
    through Secrets Manager."""
    return document(
        {"Sid": "ReadClusterSecrets", "Effect": "Allow",
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
                    "secretsmanager:ListSecretVersionIds"],
         "Resource": _arn("secretsmanager", region, account_id, f"secret:{secret_prefix}*")},
        {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    )
