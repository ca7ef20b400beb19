"""The images a tree names, checked against the registry that must serve them before the tree is
published: a digest the registry does not hold would end the first sync in ImagePullBackOff.

ECR (a `*.dkr.ecr.<region>.amazonaws.com` registry) is asked through boto3 with the caller's
AWS credentials; any other registry through the OCI distribution API (HTTP for loopback hosts,
HTTPS otherwise), with basic credentials when it has them (`local`'s registry does).

    >>> require_held(env, credentials="mlops:secret")                     # doctest: +SKIP
"""

from __future__ import annotations

import re

import httpx

from argocd.errors import PublishError
from environments import Environment

# What a HEAD must accept to answer with the manifest a push made (and its digest).
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


def api_url(host: str) -> str:
    """Where the registry API of `host` answers: plain HTTP on loopback (as Docker treats it)."""
    name, _, port = host.partition(":")
    if name in ("localhost", "127.0.0.1"):
        return f"http://127.0.0.1:{port or 80}"
    return f"https://{host}"


def manifest_digest(host: str, repository: str, reference: str, *, credentials: str | None = None,
                    what_to_do: str = "") -> str | None:
    """The digest of `repository:reference` (a tag or a digest) in the registry at `host`, None
    when it holds none. `credentials`: "user:password"."""
    auth = tuple(credentials.split(":", 1)) if credentials else None
    hint = f"; {what_to_do}" if what_to_do else ""
    try:
        answer = httpx.head(f"{api_url(host)}/v2/{repository}/manifests/{reference}", auth=auth,  # type: ignore[arg-type]
                            headers={"Accept": MANIFEST_TYPES}, timeout=10)
    except httpx.HTTPError as e:
        raise PublishError(f"registry {host} unreachable for image {repository}: {e}{hint}") from None
    if answer.status_code in (401, 403):
        raise PublishError(f"registry {host} refused the credentials for image {repository} "
                           f"(HTTP {answer.status_code}){hint}")
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        raise PublishError(f"registry {host} answered HTTP {answer.status_code} for {repository}:{reference}{hint}")
    return answer.headers.get("Docker-Content-Digest") or reference


def require_held(env: Environment, *, credentials: str | None = None) -> None:
    """Every image the environment names by digest is in its registry; else one line naming the
    image and the registry, and nothing is published."""
    registry = env.images.registry
    if not env.images.digests:
        return
    if not registry:
        raise PublishError(f"env {env.name}: images.digests given but no registry to pull them from")
    host, _, namespace = registry.partition("/")
    todo = f"push them: mlops images push {env.name}"
    for name, digest in sorted(env.images.digests.items()):
        repository = f"{namespace}/{name}" if namespace else name
        ecr = ECR_HOST.match(host)
        held = (_ecr_holds(ecr, repository, digest, todo) if ecr
                else manifest_digest(host, repository, digest, credentials=credentials, what_to_do=todo) is not None)
        if not held:
            raise PublishError(f"env {env.name}: image {registry}/{name}@{digest} is not in registry {host}; "
                               f"nothing was published: {todo}")


def _ecr_holds(match: re.Match[str], repository: str, digest: str, todo: str) -> bool:
    import boto3
    import botocore.exceptions

    host = match.group(0)
    ecr = boto3.client("ecr", region_name=match["region"])
    try:
        ecr.describe_images(registryId=match["account"], repositoryName=repository, imageIds=[{"imageDigest": digest}])
        return True
    except ecr.exceptions.ImageNotFoundException:
        return False
    except ecr.exceptions.RepositoryNotFoundException:
        raise PublishError(f"registry {host} has no repository {repository}: is the stack up "
                           "(it creates one per app image)?") from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise PublishError(f"registry {host} cannot be asked for {repository}@{digest[:19]}: {e}; {todo}") from None
