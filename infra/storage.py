"""Registries and storage: an ECR repository per app image and the data and model buckets.

Repositories: scan on push, immutable tags, KMS encryption, a lifecycle policy. Buckets:
versioning per environment, SSE-KMS with a key of their own, every public access path
blocked, TLS-only bucket policy, objects owned by the bucket owner (no ACLs), and a
lifecycle that keeps data for the environment's retention.

Repositories live under `<project>/<env>/` so several environments can share an account;
`registry` is then exactly the prefix `Environment.image()` expects.

In production everything here (and the key that decrypts it) is retained on delete: a
`pulumi destroy` leaves the data, the models and the images in the account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from environments import Environment
from infra import policies

TOKEN = "mlops:infra:RegistriesAndStorage"
# How many tagged images a repository keeps: releases are immutable, so old ones must age out.
KEEP_TAGGED_IMAGES = 100
ABORT_MULTIPART_DAYS = 1


@dataclass(frozen=True)
class BucketRef:
    """A bucket and the key prefix an environment uses in it ("" or "prefix/")."""

    name: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> BucketRef:
        rest = uri.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")


def repository_namespace(env: Environment) -> str:
    return f"{env.tags.project}/{env.name}"


def lifecycle_policy(*, untagged_days: int) -> str:
    return json.dumps({"rules": [
        {"rulePriority": 1, "description": "drop untagged layers",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": untagged_days},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"keep the last {KEEP_TAGGED_IMAGES} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_TAGGED_IMAGES},
         "action": {"type": "expire"}},
    ]})


@dataclass(frozen=True)
class RegistriesAndStorageArgs:
    namespace: str
    images: tuple[str, ...]
    data: BucketRef
    models: BucketRef
    versioning: bool
    retention_days: int
    # Non-production stacks may be torn down with their contents; production may not.
    disposable: bool

    @classmethod
    def from_env(cls, env: Environment, *, images: tuple[str, ...]) -> RegistriesAndStorageArgs:
        return cls(namespace=repository_namespace(env), images=images,
                   data=BucketRef.parse(env.storage.data_uri), models=BucketRef.parse(env.storage.models_uri),
                   versioning=env.storage.versioning, retention_days=env.storage.retention_days,
                   disposable=not env.production)


class RegistriesAndStorage(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]
    registry: pulumi.Output[str]
    data_bucket: pulumi.Output[str]
    data_bucket_arn: pulumi.Output[str]
    models_bucket: pulumi.Output[str]
    models_bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RegistriesAndStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        self._retain = not args.disposable
        child = self._opts()

        self.repository_urls, self.repository_arns = {}, {}
        for image in args.images:
            repo = aws.ecr.Repository(
                f"{name}-{image}",
                name=f"{args.namespace}/{image}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS"}],
                force_delete=args.disposable,
                opts=child,
            )
            aws.ecr.LifecyclePolicy(f"{name}-{image}-lifecycle", repository=repo.name,
                                    policy=lifecycle_policy(untagged_days=args.retention_days), opts=child)
            self.repository_urls[image] = repo.repository_url
            self.repository_arns[image] = repo.arn
        first = self.repository_urls[args.images[0]]
        # "<account>.dkr.ecr.<region>.amazonaws.com/<project>/<env>": the prefix of every image.
        self.registry = first.apply(lambda url: url.rsplit("/", 1)[0])

        key = aws.kms.Key(f"{name}-storage-key", description=f"S3 encryption for {args.namespace}",
                          enable_key_rotation=True, deletion_window_in_days=30, opts=child)
        aws.kms.Alias(f"{name}-storage-key-alias", name=f"alias/{args.namespace.replace('/', '-')}-storage",
                      target_key_id=key.key_id, opts=child)
        self.key_arn = key.arn

        data = self._bucket(name, "data", args.data, key, args, expire_current=True)
        models = self._bucket(name, "models", args.models, key, args, expire_current=False)
        self.data_bucket, self.data_bucket_arn = data.bucket, data.arn
        self.models_bucket, self.models_bucket_arn = models.bucket, models.arn
        self.register_outputs({
            "repository_urls": self.repository_urls,
            "data_bucket": self.data_bucket,
            "models_bucket": self.models_bucket,
        })

    def _opts(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, retain_on_delete=self._retain, depends_on=depends_on)

    def _bucket(self, name: str, role: str, ref: BucketRef, key: aws.kms.Key, args: RegistriesAndStorageArgs, *,
                expire_current: bool) -> aws.s3.Bucket:
        child = self._opts()
        bucket = aws.s3.Bucket(f"{name}-{role}", bucket=ref.name, force_destroy=args.disposable, opts=child)
        block = aws.s3.BucketPublicAccessBlock(f"{name}-{role}-public-access", bucket=bucket.id,
                                               block_public_acls=True, block_public_policy=True,
                                               ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(f"{name}-{role}-ownership", bucket=bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{role}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": key.arn},
                    "bucket_key_enabled": True}],
            opts=child)
        if args.versioning:
            aws.s3.BucketVersioning(f"{name}-{role}-versioning", bucket=bucket.id,
                                    versioning_configuration={"status": "Enabled"}, opts=child)
        rule: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
            "id": "retention",
            "status": "Enabled",
            "filter": {"prefix": ref.prefix},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
            # Superseded versions (and models replaced by a newer one) go after the retention period.
            "noncurrent_version_expiration": {"noncurrent_days": args.retention_days},
        }
        if expire_current:
            rule["expiration"] = {"days": args.retention_days}
        aws.s3.BucketLifecycleConfiguration(f"{name}-{role}-lifecycle", bucket=bucket.id, rules=[rule], opts=child)
        # After the public access block: a policy written first could race it.
        aws.s3.BucketPolicy(f"{name}-{role}-tls-only", bucket=bucket.id,
                            policy=policies.as_json(policies.deny_insecure_transport(bucket.arn)),
                            opts=self._opts(depends_on=[block]))
        return bucket
