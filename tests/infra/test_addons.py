"""The add-ons' AWS side: one least-privilege role per add-on that calls AWS, bound to exactly its
service account; the EFS file system behind `efs-sc`; the VPC CNI's network policy; the API's
secret; and the one object that hands all of it to the GitOps tree (`gitops_metadata`)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from apps.addons.charts import calling_aws, secret_prefix
from apps.cloud import STACK_OUTPUT, CloudMetadata
from argocd.render import service_accounts
from environments import Environment, load_environment
from infra.mocks import ACCOUNT_ID, Run
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

ROLE = "aws:iam/role:Role"
INLINE = "aws:iam/rolePolicy:RolePolicy"
ATTACHED = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
SECRET = "aws:secretsmanager/secret:Secret"
EBS_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
CLOUDWATCH_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
READ_PREFIXES = ("Describe", "Get", "List")


def _roles(run: Run) -> dict[str, Any]:
    """add-on -> its role (the add-ons component's roles, named after the add-on)."""
    return {r.name.removeprefix(f"{run.env}-addons-"): r for r in run.of_type(ROLE) if r.parent == f"{run.env}-addons"}


def _document(run: Run, addon: str) -> dict[str, Any]:
    return json.loads(run.one(INLINE, f"-addons-{addon}-access").inputs["policy"])


def _managed(run: Run, addon: str) -> list[str]:
    return sorted(a.inputs["policyArn"] for a in run.of_type(ATTACHED) if a.name.startswith(f"{run.env}-addons-{addon}-"))


def _actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


def _resources(statement: dict[str, Any]) -> list[str]:
    r = statement["Resource"]
    return [r] if isinstance(r, str) else list(r)


def _statements_allowing(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in doc["Statement"] if s["Effect"] == "Allow" and action in _actions(s)]


def _private_subnet_ids(run: Run) -> set[str]:
    return {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["tier"] == "private" and s.id}


# ---------------------------------------------------------------- roles and their trust


def test_one_role_per_add_on_that_calls_aws(env: Environment, run: Run) -> None:
    roles = _roles(run)
    expected = {name for name, _, _ in calling_aws(env)}
    assert set(roles) == expected == {
        "aws-load-balancer-controller", "aws-ebs-csi-driver", "aws-efs-csi-driver", "external-secrets",
        "amazon-cloudwatch-observability", "cluster-autoscaler"}
    for addon, role in roles.items():
        assert role.inputs["name"] == f"{aws(env).cluster.name}-{addon}"[:64]
        assert len(role.inputs["name"]) <= 64


def test_each_role_trusts_exactly_its_add_ons_service_account(env: Environment, run: Run) -> None:
    assert aws(env).cluster.identity == "pod_identity", "the shipped cloud environments use Pod Identity"
    roles = _roles(run)
    associations = {(a.inputs["namespace"], a.inputs["serviceAccount"]): a for a in run.of_type(ASSOCIATION)}
    for addon, namespace, service_account in calling_aws(env):
        assoc = associations[(namespace, service_account)]
        assert assoc.inputs["roleArn"] == roles[addon].outputs["arn"]
        assert assoc.inputs["clusterName"] == aws(env).cluster.name
        (trust,) = json.loads(roles[addon].inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {
            "aws:SourceAccount": ACCOUNT_ID,
            "aws:RequestTag/eks-cluster-name": aws(env).cluster.name,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }}
    # apps and add-ons: one association per service account, none shared
    assert len(associations) == len(run.of_type(ASSOCIATION)) == len(calling_aws(env)) + len(service_accounts(env))


def test_under_irsa_each_role_trusts_its_service_account_through_the_oidc_provider(run_with) -> None:
    run = run_with("staging", {"aws": {"cluster": {"identity": "irsa"}}})
    assert not run.of_type(ASSOCIATION)
    cluster = run.one("eks:index:Cluster").outputs
    roles = _roles(run)
    for addon, namespace, service_account in calling_aws(load_environment("staging")):
        (trust,) = json.loads(roles[addon].inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Federated": cluster["oidcProviderArn"]}
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Condition"] == {"StringEquals": {
            f"{cluster['oidcIssuer']}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{cluster['oidcIssuer']}:aud": "sts.amazonaws.com",
        }}


# ---------------------------------------------------------------- what each role may do


def test_no_add_on_policy_has_a_wildcard_action(env: Environment, run: Run) -> None:
    for addon in ("aws-load-balancer-controller", "aws-efs-csi-driver", "external-secrets", "cluster-autoscaler"):
        for s in _document(run, addon)["Statement"]:
            assert s["Effect"] == "Allow"
            assert not [a for a in _actions(s) if "*" in a], f"{addon}: wildcard action in {s['Sid']}"


def test_load_balancer_controller_changes_only_what_it_created_for_this_cluster(env: Environment, run: Run) -> None:
    cluster = aws(env).cluster.name
    doc = _document(run, "aws-load-balancer-controller")
    assert not _managed(run, "aws-load-balancer-controller")
    created = {"aws:RequestTag/elbv2.k8s.aws/cluster": cluster}
    owned = {"aws:ResourceTag/elbv2.k8s.aws/cluster": cluster}
    for s in doc["Statement"]:
        writes = [a for a in _actions(s) if not a.split(":")[1].startswith(READ_PREFIXES)]
        if not writes:
            continue
        assert "Condition" in s, f"{s['Sid']}: {writes} without a condition"
    for action in ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup",
                   "elasticloadbalancing:CreateListener", "elasticloadbalancing:CreateRule", "ec2:CreateSecurityGroup"):
        (s,) = _statements_allowing(doc, action)
        assert s["Condition"]["StringEquals"] == created, action
    for action in ("elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyLoadBalancerAttributes",
                   "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:RegisterTargets",
                   "elasticloadbalancing:ModifyListener", "elasticloadbalancing:DeleteListener",
                   "elasticloadbalancing:ModifyRule", "elasticloadbalancing:DeleteRule", "ec2:DeleteSecurityGroup"):
        (s,) = _statements_allowing(doc, action)
        assert s["Condition"] == {"StringEquals": owned}, action
    # tags are added on create only with this cluster's tag, or to what already carries it
    for s in _statements_allowing(doc, "elasticloadbalancing:AddTags") + _statements_allowing(doc, "ec2:CreateTags"):
        cond = s["Condition"]["StringEquals"]
        assert cond.get("aws:RequestTag/elbv2.k8s.aws/cluster") == cluster or cond == owned
    (slr,) = _statements_allowing(doc, "iam:CreateServiceLinkedRole")
    assert slr["Condition"] == {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}
    # rules of the nodes' (untagged) group: only groups in this cluster's VPC
    vpc = run.one("aws:ec2/vpc:Vpc").id
    (rules,) = _statements_allowing(doc, "ec2:AuthorizeSecurityGroupIngress")
    assert rules["Condition"] == {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:{aws(env).region}:{ACCOUNT_ID}:vpc/{vpc}"}}
    assert _resources(rules) == [f"arn:aws:ec2:{aws(env).region}:{ACCOUNT_ID}:security-group/*"]
    # WAF and Shield: read, never associate or protect
    actions = {a for s in doc["Statement"] for a in _actions(s)}
    assert not [a for a in actions if a.startswith(("wafv2:", "waf-regional:", "shield:"))
                and not a.split(":")[1].startswith(READ_PREFIXES)]


def test_ebs_csi_driver_gets_the_aws_managed_policy_only(env: Environment, run: Run) -> None:
    assert _managed(run, "aws-ebs-csi-driver") == [EBS_POLICY]
    assert not [p for p in run.of_type(INLINE) if p.name.endswith("-aws-ebs-csi-driver-access")]


def test_efs_csi_driver_is_scoped_to_our_file_system(env: Environment, run: Run) -> None:
    fs = run.one(FILE_SYSTEM).outputs["arn"]
    doc = _document(run, "aws-efs-csi-driver")
    assert not _managed(run, "aws-efs-csi-driver")
    (describe,) = _statements_allowing(doc, "elasticfilesystem:DescribeFileSystems")
    assert _resources(describe) == [fs]
    (create,) = _statements_allowing(doc, "elasticfilesystem:CreateAccessPoint")
    assert _resources(create) == [fs]
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/efs.csi.aws.com/cluster": "true"}}
    (delete,) = _statements_allowing(doc, "elasticfilesystem:DeleteAccessPoint")
    assert delete["Condition"] == {"StringEquals": {"aws:ResourceTag/efs.csi.aws.com/cluster": "true"}}
    assert _resources(delete) == [f"arn:aws:elasticfilesystem:{aws(env).region}:{ACCOUNT_ID}:access-point/*"]
    wildcard = [a for s in doc["Statement"] if "*" in _resources(s) for a in _actions(s)]
    assert wildcard == ["ec2:DescribeAvailabilityZones"], "'*' only where AWS has no narrower resource"


def test_external_secrets_reads_only_the_clusters_secrets_and_decrypts_through_secrets_manager(
        env: Environment, run: Run) -> None:
    doc = _document(run, "external-secrets")
    prefix = secret_prefix(env)
    (read,) = _statements_allowing(doc, "secretsmanager:GetSecretValue")
    assert sorted(_actions(read)) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                      "secretsmanager:ListSecretVersionIds"]
    (pattern,) = _resources(read)
    assert pattern == f"arn:aws:secretsmanager:{aws(env).region}:{ACCOUNT_ID}:secret:{prefix}*"
    secret = run.one(SECRET)
    assert fnmatchcase(secret.outputs["arn"], pattern), "the API's secret is readable"
    assert not fnmatchcase(f"arn:aws:secretsmanager:{aws(env).region}:{ACCOUNT_ID}:secret:other-cluster/x-AbCdEf",
                           pattern)
    (decrypt,) = _statements_allowing(doc, "kms:Decrypt")
    assert _actions(decrypt) == ["kms:Decrypt"]
    assert _resources(decrypt) == [secret.inputs["kmsKeyId"]]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{aws(env).region}.amazonaws.com"}}


def test_cloudwatch_observability_gets_the_container_insights_policy(env: Environment, run: Run) -> None:
    assert _managed(run, "amazon-cloudwatch-observability") == [CLOUDWATCH_POLICY]


# ---------------------------------------------------------------- the API's secret


def test_api_secret_named_under_the_prefix_encrypted_and_valueless(env: Environment, run: Run) -> None:
    secret = run.one(SECRET)
    assert secret.inputs["name"] == f"{secret_prefix(env)}inference-api"
    key = run.one("aws:kms/key:Key", "-addons-secretsmanager-key")
    assert secret.inputs["kmsKeyId"] == key.outputs["arn"] and key.inputs["enableKeyRotation"] is True
    assert "operator" in secret.inputs["description"]
    assert not run.of_type("aws:secretsmanager/secretVersion:SecretVersion"), "no value in code or state"
    assert secret.inputs["recoveryWindowInDays"] == (30 if env.production else 0)


# ---------------------------------------------------------------- EFS


def test_efs_encrypted_with_its_own_key_modes_from_settings_and_lifecycle(env: Environment, run: Run) -> None:
    fs = run.one(FILE_SYSTEM).inputs
    settings = env.addons.efs_csi_driver
    key = run.one("aws:kms/key:Key", "-sharedfs-key")
    assert fs["encrypted"] is True and fs["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert (fs["performanceMode"], fs["throughputMode"]) == (settings.performance_mode, settings.throughput_mode)
    assert {"transitionToIa": "AFTER_30_DAYS"} in fs["lifecyclePolicies"]
    backup = run.one("aws:efs/backupPolicy:BackupPolicy").inputs
    assert backup["fileSystemId"] == run.one(FILE_SYSTEM).id
    assert backup["backupPolicy"]["status"] == ("ENABLED" if env.production else "DISABLED")


def test_one_mount_target_per_private_subnet(env: Environment, run: Run) -> None:
    targets = run.of_type(MOUNT_TARGET)
    assert sorted(t.inputs["subnetId"] for t in targets) == sorted(_private_subnet_ids(run))
    assert len(targets) == aws(env).network.az_count
    fs, sg = run.one(FILE_SYSTEM), run.one("aws:ec2/securityGroup:SecurityGroup", "-sharedfs-sg")
    assert all(t.inputs["fileSystemId"] == fs.id and t.inputs["securityGroups"] == [sg.id] for t in targets)


def test_efs_security_group_admits_only_nfs_from_the_nodes_group(env: Environment, run: Run) -> None:
    sg = run.one("aws:ec2/securityGroup:SecurityGroup", "-sharedfs-sg")
    assert sg.inputs["vpcId"] == run.one("aws:ec2/vpc:Vpc").id
    # the group EKS made for the cluster: managed node groups without a launch template run in it
    eks_cluster = run.references[run.one("eks:index:Cluster").outputs["eksCluster"]["urn"]]
    nodes = eks_cluster["vpcConfig"]["clusterSecurityGroupId"]
    (rule,) = sg.inputs["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 2049, 2049)
    assert rule["securityGroups"] == [nodes]
    assert not rule.get("cidrBlocks") and not rule.get("ipv6CidrBlocks") and not rule.get("self")
    assert not sg.inputs.get("egress"), "mount targets only answer"
    assert not run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert not run.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")


def test_efs_disabled_removes_the_file_system_and_its_role(run_with) -> None:
    # The shared volume then needs a class of its own (the model refuses efs-sc without EFS), and
    # a ReadWriteOnce one keeps the fraud stages on one node: their CPU variants.
    run = run_with("staging", {"addons": {"efs_csi_driver": {"enabled": False}},
                               "storage": {"shared_volume": {"storage_class": "gp3", "read_write_many": False}},
                               "apps": {"fraud_pipeline": {"use_gpu": False}}})
    for typ in (FILE_SYSTEM, MOUNT_TARGET, "aws:ec2/securityGroup:SecurityGroup", "aws:efs/backupPolicy:BackupPolicy"):
        assert not run.of_type(typ), typ
    assert "aws-efs-csi-driver" not in _roles(run)
    assert not [a for a in run.of_type(ASSOCIATION) if a.inputs["serviceAccount"] == "efs-csi-controller-sa"]
    metadata = CloudMetadata.model_validate(run.outputs[STACK_OUTPUT])
    assert metadata.file_system_id is None and "aws-efs-csi-driver" not in metadata.role_arns


@pytest.mark.parametrize("field, addon", [
    ("aws_load_balancer_controller", "aws-load-balancer-controller"),
    ("ebs_csi_driver", "aws-ebs-csi-driver"),
    ("cloudwatch_observability", "amazon-cloudwatch-observability"),
    ("cluster_autoscaler", "cluster-autoscaler"),
])
def test_an_add_on_turned_off_has_no_role(run_with, field: str, addon: str) -> None:
    run = run_with("dev", {"addons": {field: {"enabled": False}}})
    roles = _roles(run)
    assert addon not in roles
    assert len(roles) == 5, "the others keep theirs"
    assert addon not in run.outputs[STACK_OUTPUT]["role_arns"]


def test_external_secrets_off_removes_its_role_and_the_secret(run_with) -> None:
    run = run_with("dev", {"addons": {"external_secrets": {"enabled": False}}})
    assert "external-secrets" not in _roles(run)
    assert not run.of_type(SECRET)
    assert not [k for k in run.of_type("aws:kms/key:Key") if k.name.endswith("-secretsmanager-key")]


# ---------------------------------------------------------------- VPC CNI


def test_vpc_cni_enforces_network_policies(env: Environment, run: Run) -> None:
    assert env.addons.vpc_cni.network_policy is True
    cni = run.one("aws:eks/addon:Addon", "-vpc-cni").inputs
    assert cni["addonName"] == "vpc-cni" and cni["clusterName"] == aws(env).cluster.name
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert cni["resolveConflictsOnCreate"] == "OVERWRITE", "adopts the CNI EKS installed"
    # pulumi-eks leaves the CNI alone (two managers of one add-on would fight)
    assert run.one("eks:index:Cluster").inputs["useDefaultVpcCni"] is True


def test_vpc_cni_network_policy_off_by_override(run_with) -> None:
    run = run_with("dev", {"addons": {"vpc_cni": {"network_policy": False}}})
    cni = run.one("aws:eks/addon:Addon", "-vpc-cni").inputs
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "false"}


# ---------------------------------------------------------------- what the tree receives


def test_gitops_metadata_is_cloud_metadata_with_every_role(env: Environment, run: Run) -> None:
    raw = run.outputs[STACK_OUTPUT]
    assert set(raw) == set(CloudMetadata.model_fields)
    metadata = CloudMetadata.model_validate(raw)
    assert metadata.registry == run.outputs["image_registry"]
    assert metadata.vpc_id == run.one("aws:ec2/vpc:Vpc").id
    assert metadata.file_system_id == run.one(FILE_SYSTEM).id
    roles = {r.name.rsplit("-identity-", 1)[1]: r.outputs["arn"] for r in run.of_type(ROLE) if "-identity-" in r.name}
    roles |= {addon: r.outputs["arn"] for addon, r in _roles(run).items()}
    assert metadata.role_arns == roles
    assert set(metadata.role_arns) == {a for a, _, _ in service_accounts(env)} | {a for a, _, _ in calling_aws(env)}
