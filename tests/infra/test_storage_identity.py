"""Registries, buckets and workload identity: nothing public, KMS on, least privilege."""

from __future__ import annotations

import json
from typing import Any

import pytest

from argocd.render import service_accounts
from environments import Environment
from infra.mocks import ACCOUNT_ID, Run
from infra.storage import BucketRef
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

BUCKET = "aws:s3/bucket:Bucket"


def _buckets(env: Environment) -> dict[str, BucketRef]:
    return {"data": BucketRef.parse(env.storage.data_uri), "models": BucketRef.parse(env.storage.models_uri)}


def _for_bucket(run: Run, typ: str, bucket: Any) -> list[Any]:
    return [r for r in run.of_type(typ) if r.inputs.get("bucket") == bucket.id]


def test_buckets_named_from_env_storage_uris(env: Environment, run: Run) -> None:
    names = sorted(b.inputs["bucket"] for b in run.of_type(BUCKET))
    assert names == sorted(ref.name for ref in _buckets(env).values())
    for b in run.of_type(BUCKET):
        assert b.inputs["forceDestroy"] is (not env.production), "production buckets are never emptied by a destroy"


def test_no_bucket_public(run: Run) -> None:
    for b in run.of_type(BUCKET):
        (block,) = _for_bucket(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", b)
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert block.inputs[flag] is True, f"{b.inputs['bucket']}: {flag} must be on"
        (owner,) = _for_bucket(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", b)
        assert owner.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced", "ACLs disabled"
        (policy,) = _for_bucket(run, "aws:s3/bucketPolicy:BucketPolicy", b)
        doc = json.loads(policy.inputs["policy"])
        assert all(s["Effect"] == "Deny" for s in doc["Statement"]), "the bucket policy grants nothing"
        assert doc["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert block.name in policy.depends_on


def test_buckets_encrypted_with_kms(run: Run) -> None:
    key = run.one("aws:kms/key:Key", "storage-key")
    assert key.inputs["enableKeyRotation"] is True
    for b in run.of_type(BUCKET):
        (sse,) = _for_bucket(run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", b)
        default = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}


def test_versioning_and_retention_per_env(env: Environment, run: Run) -> None:
    refs = {ref.name: (role, ref) for role, ref in _buckets(env).items()}
    for b in run.of_type(BUCKET):
        role, ref = refs[b.inputs["bucket"]]
        versioning = _for_bucket(run, "aws:s3/bucketVersioning:BucketVersioning", b)
        assert [v.inputs["versioningConfiguration"]["status"] for v in versioning] == (
            ["Enabled"] if env.storage.versioning else [])
        (life,) = _for_bucket(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", b)
        (rule,) = life.inputs["rules"]
        assert rule["status"] == "Enabled" and rule["filter"]["prefix"] == ref.prefix
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == env.storage.retention_days
        # data ages out; published models stay until replaced
        assert rule.get("expiration", {}).get("days") == (env.storage.retention_days if role == "data" else None)


def test_ecr_repository_per_image_scanned_immutable_with_lifecycle(env: Environment, run: Run) -> None:
    repos = run.of_type("aws:ecr/repository:Repository")
    assert sorted(r.inputs["name"] for r in repos) == [
        f"{env.tags.project}/{env.name}/ml-inference-api", f"{env.tags.project}/{env.name}/ml-pipeline"]
    policies = {p.inputs["repository"]: json.loads(p.inputs["policy"])
                for p in run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")}
    for r in repos:
        assert r.inputs["imageTagMutability"] == "IMMUTABLE"
        assert r.inputs["imageScanningConfiguration"]["scanOnPush"] is True
        assert r.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
        rules = policies[r.inputs["name"]]["rules"]
        assert any(rule["selection"]["tagStatus"] == "untagged" for rule in rules)


def _policy(run: Run, app: str) -> dict[str, Any]:
    return json.loads(run.one("aws:iam/rolePolicy:RolePolicy", f"-{app}-access").inputs["policy"])


def _actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


def _allowed(doc: dict[str, Any], action: str) -> list[Any]:
    out: list[Any] = []
    for s in doc["Statement"]:
        if s["Effect"] == "Allow" and action in _actions(s):
            out += s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
    return out


def test_one_role_per_workload_bound_to_its_service_account(env: Environment, run: Run) -> None:
    expected = service_accounts(env)
    roles = {r.name.rsplit("-identity-", 1)[1]: r for r in run.of_type("aws:iam/role:Role") if "-identity-" in r.name}
    assert sorted(roles) == sorted(app for app, _, _ in expected)
    associations = {(a.inputs["namespace"], a.inputs["serviceAccount"]): a
                    for a in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    if aws(env).cluster.identity == "pod_identity":
        for app, ns, sa in expected:
            assoc = associations[(ns, sa)]
            assert assoc.inputs["roleArn"] == roles[app].outputs["arn"]
            assert assoc.inputs["clusterName"] == aws(env).cluster.name
            trust = json.loads(roles[app].inputs["assumeRolePolicy"])["Statement"][0]
            assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
            assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
            # only this cluster's pods of this namespace and service account (Pod Identity's session tags)
            assert trust["Condition"] == {"StringEquals": {
                "aws:SourceAccount": ACCOUNT_ID,
                "aws:RequestTag/eks-cluster-name": aws(env).cluster.name,
                "aws:RequestTag/kubernetes-namespace": ns,
                "aws:RequestTag/kubernetes-service-account": sa,
            }}
    else:
        assert not associations


def test_irsa_trust_is_scoped_to_one_service_account(run_with) -> None:
    run = run_with("staging", {"aws": {"cluster": {"identity": "irsa"}}})
    assert not run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    cluster = run.one("eks:index:Cluster").outputs
    from environments import load_environment

    for app, ns, sa in service_accounts(load_environment("staging")):
        role = run.one("aws:iam/role:Role", f"-identity-{app}")
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Federated": cluster["oidcProviderArn"]}
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Condition"]["StringEquals"] == {
            f"{cluster['oidcIssuer']}:sub": f"system:serviceaccount:{ns}:{sa}",
            f"{cluster['oidcIssuer']}:aud": "sts.amazonaws.com",
        }


def test_workload_policies_are_least_privilege(env: Environment, run: Run) -> None:
    data, models = _buckets(env)["data"], _buckets(env)["models"]
    data_arn, models_arn = f"arn:aws:s3:::{data.name}", f"arn:aws:s3:::{models.name}"
    repos = {r.inputs["name"].rsplit("/", 1)[1]: r.outputs["arn"] for r in run.of_type("aws:ecr/repository:Repository")}
    for app, _, _ in service_accounts(env):
        doc = _policy(run, app)
        for s in doc["Statement"]:
            assert s["Effect"] == "Allow"
            assert not any(a.endswith("*") for a in _actions(s)), f"{app}: wildcard action in {s}"
            if s["Resource"] == "*":
                assert _actions(s) == ["ecr:GetAuthorizationToken"], f"{app}: '*' resource in {s}"
        # each workload pulls only its own image
        image = {"inference-api": "ml-inference-api"}.get(app, "ml-pipeline")
        assert _allowed(doc, "ecr:BatchGetImage") == [repos[image]]
    family = f"{models_arn}/{models.prefix}{{}}/*".format
    api = _policy(run, "inference-api")
    # Each reads only its own family's registry: the API cannot see (or serve) the fraud models.
    assert _allowed(api, "s3:GetObject") == [family("inference")]
    assert not _allowed(api, "s3:PutObject") and not _allowed(api, "s3:DeleteObject")
    batch = _policy(run, "batch-pipeline")
    assert _allowed(batch, "s3:PutObject") == [f"{data_arn}/{data.prefix}*"], "the pipeline writes data only"
    assert family("pcc") in _allowed(batch, "s3:GetObject") and family("fraud") not in _allowed(batch, "s3:GetObject")
    fraud = _policy(run, "fraud-pipeline")
    assert _allowed(fraud, "s3:PutObject") == [family("fraud")], "model-build publishes fraud models only"
    assert not [r for r in _allowed(fraud, "s3:GetObject") if r.startswith(data_arn)]
    bootstrap = _policy(run, "model-bootstrap")
    assert sorted(_allowed(bootstrap, "s3:PutObject")) == [family(f) for f in ("fraud", "inference", "pcc")]
    assert not [r for r in _allowed(bootstrap, "s3:GetObject") if r.startswith(data_arn)]
    listing = next(s for s in bootstrap["Statement"] if s["Sid"] == "ModelsList")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{models.prefix}{f}/*" for f in ("fraud", "inference", "pcc")]}}
    cleanup = _policy(run, "cleanup")
    assert _allowed(cleanup, "s3:DeleteObject") == [f"{data_arn}/{data.prefix}*"]
    assert not _allowed(cleanup, "s3:PutObject")
    assert not [r for r in _allowed(cleanup, "s3:GetObject") if r.startswith(models_arn)]
    key = run.one("aws:kms/key:Key", "storage-key").outputs["arn"]
    assert _allowed(api, "kms:Decrypt") == [key] and not _allowed(api, "kms:GenerateDataKey")


def test_prefixed_storage_uri_scopes_listing_and_objects(run_with) -> None:
    run = run_with("dev", {"storage": {"data_uri": "s3://ml-platform-dev-data/teams/fraud"}})
    doc = _policy(run, "batch-pipeline")
    listing = next(s for s in doc["Statement"] if s["Sid"] == "DataList")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["teams/fraud/*"]}}
    assert _allowed(doc, "s3:PutObject") == ["arn:aws:s3:::ml-platform-dev-data/teams/fraud/*"]


@pytest.mark.parametrize("field", ["env", "project", "owner", "cost-centre"])
def test_every_aws_resource_carries_the_env_tags(env: Environment, run: Run, field: str) -> None:
    (provider,) = run.of_type("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    expected = {"env": env.name, "project": env.tags.project, "owner": env.tags.owner,
                "cost-centre": env.tags.cost_centre}
    assert tags[field] == expected[field]
    provider_ref = f"{provider.id}"
    aws_resources = [r for r in run.resources if r.custom and r.type.startswith("aws:")]
    assert aws_resources
    untagged = [r.name for r in aws_resources if not (r.provider or "").endswith(provider_ref)]
    assert not untagged, f"created outside the tagged provider: {untagged}"
    # pulumi-eks creates its own children from the tags it is given
    assert run.one("eks:index:Cluster").inputs["tags"][field] == expected[field]
