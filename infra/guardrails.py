"""Guardrails: what the program refuses to deploy, checked before any resource exists.

Production refuses a single NAT, fewer than three AZs, a public endpoint open to
everyone, and deletion protection off. Staging and dev may relax these: `relaxed()` lists
what production would refuse so the offline plan can show it. A few rules hold everywhere
because the program could not work without them.

    >>> from environments import load_environment
    >>> enforce(load_environment("prod"))  # passes silently
"""

from __future__ import annotations

import ipaddress

from environments import Environment
from infra.errors import GuardrailError, NoCloudError, Violation

PROD_MIN_AZS = 3
OPEN_TO_ALL = ipaddress.IPv4Network("0.0.0.0/0")


def source_of(env: Environment) -> str:
    """The file a reader edits to fix a violation."""
    return f"environments/{env.name}.yaml"


def _production_rules(env: Environment) -> list[Violation]:
    assert env.aws is not None
    src, net, cluster = source_of(env), env.aws.network, env.aws.cluster
    found: list[Violation] = []
    if net.nat != "per_az":
        found.append(Violation(src, "aws.network.nat", f"is {net.nat!r}",
                               "production needs 'per_az' so one AZ's NAT failure cannot cut every node's egress"))
    if net.az_count < PROD_MIN_AZS:
        found.append(Violation(src, "aws.network.az_count", f"is {net.az_count}",
                               f"production needs at least {PROD_MIN_AZS} availability zones"))
    if cluster.endpoint_public:
        cidrs = [ipaddress.IPv4Network(c) for c in cluster.public_access_cidrs]
        if not cidrs:
            found.append(Violation(src, "aws.cluster.public_access_cidrs", "is empty while endpoint_public is true",
                                   "list the CIDRs allowed to reach the API, or set endpoint_public: false"))
        elif OPEN_TO_ALL in cidrs:
            found.append(Violation(src, "aws.cluster.public_access_cidrs", "contains 0.0.0.0/0",
                                   "a public production endpoint must be limited to known CIDRs"))
    if not cluster.deletion_protection:
        found.append(Violation(src, "aws.cluster.deletion_protection", "is false",
                               "production clusters keep deletion protection on; a deliberate teardown lifts it on "
                               "the cluster itself (see `mlops infra destroy-order`)"))
    return found


def _universal_rules(env: Environment) -> list[Violation]:
    assert env.aws is not None
    src, found = source_of(env), []
    if env.aws.network.nat == "none":
        found.append(Violation(src, "aws.network.nat", "is 'none'",
                               "nodes live in private subnets and this program creates no interface endpoints "
                               "(ECR, STS, EKS): use 'single' or 'per_az'"))
    for field in ("data_uri", "models_uri"):
        uri = getattr(env.storage, field)
        if not uri.startswith("s3://"):
            found.append(Violation(src, f"storage.{field}", f"is {uri!r}",
                                   "an AWS environment stores in S3: use s3://<bucket>[/prefix]"))
    if env.storage.endpoint_url is not None:
        found.append(Violation(src, "storage.endpoint_url", f"is {env.storage.endpoint_url!r}",
                               "an AWS environment uses S3 itself: remove endpoint_url"))
    if env.storage.data_uri.split("/")[2:3] == env.storage.models_uri.split("/")[2:3]:
        found.append(Violation(src, "storage.models_uri", "names the same bucket as storage.data_uri",
                               "models and data live in separate buckets so roles can be scoped to one of them"))
    efs = env.addons.efs_csi_driver
    if efs.enabled and efs.performance_mode == "maxIO" and efs.throughput_mode == "elastic":
        found.append(Violation(src, "addons.efs_csi_driver.throughput_mode", "is 'elastic' with performance_mode 'maxIO'",
                               "EFS offers elastic throughput in generalPurpose mode only: use 'bursting', or "
                               "performance_mode 'generalPurpose'"))
    return found


def check(env: Environment) -> list[Violation]:
    """Every violation at once, so one edit of the file fixes them all."""
    if env.aws is None:
        raise NoCloudError(f"{source_of(env)}: has no aws block; guardrails apply to cloud environments only")
    return _universal_rules(env) + (_production_rules(env) if env.production else [])


def enforce(env: Environment) -> None:
    violations = check(env)
    if violations:
        raise GuardrailError(env.name, violations)


def relaxed(env: Environment) -> list[Violation]:
    """What production would refuse in a non-production environment (shown, not enforced)."""
    if env.aws is None or env.production:
        return []
    return _production_rules(env)
