"""IAM policy documents as plain data: pure builders, so tests read exactly what AWS gets.

Every document names its resources; the only `*` is where AWS allows nothing narrower
(`ecr:GetAuthorizationToken`).
"""

from __future__ import annotations

from typing import Any

import pulumi

Document = dict[str, Any]

ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
S3_READ_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
S3_WRITE_OBJECT_ACTIONS = ["s3:PutObject", "s3:DeleteObject"]


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


def bucket_access(*, sid: str, bucket_arn: pulumi.Input[str], prefix: str, write: bool,
                  delete_only: bool = False) -> list[dict[str, Any]]:
    """List one prefix of one bucket; read (and write) its objects."""
    objects = pulumi.Output.concat(bucket_arn, "/", prefix, "*") if prefix else pulumi.Output.concat(bucket_arn, "/*")
    actions = list(S3_READ_OBJECT_ACTIONS)
    if write:
        actions += S3_WRITE_OBJECT_ACTIONS
    if delete_only:
        actions = ["s3:GetObject", "s3:DeleteObject"]
    listing: dict[str, Any] = {"Sid": f"{sid}List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn}
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
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
