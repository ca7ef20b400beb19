"""The GitOps publish step as a Pulumi resource (a dynamic provider).

Its inputs are the repository coordinates and the rendered tree's file digests, so
`pulumi preview --diff` shows exactly which files a `pulumi up` will change. Create and
update render the environment again (with the stack's CloudMetadata: registry, roles, ids),
refuse to go on if the tree is not the one the preview showed, and publish it with the
GitOps room's publisher; the output is the commit. Delete publishes nothing and
rewrites nothing: destroying a stack leaves the GitOps history as it was.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult
from pydantic import BaseModel, ConfigDict

from argocd import publish as publisher
from argocd.publish import is_local, local_path, mask
from apps.cloud import CloudMetadata
from argocd.errors import GitOpsError
from argocd.images import require_held
from argocd.render import RenderedTree, as_deployed, render_environment
from environments import Environment, load_environment
from infra.errors import PublishError

# Changing where the tree goes makes a new publish resource; the old one's delete is a no-op.
LOCATION_FIELDS = ("repo_url", "branch", "path")


class PublishSpec(BaseModel):
    """What one publish means: which environment, rendered how, sent where, expected to be what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_name: str
    repo_url: str
    branch: str
    path: str
    # apps.cloud.CloudMetadata as data: what the stack created that the tree names.
    cloud: dict[str, Any] = {}
    image_tag: str | None = None
    # What Argo CD clones, when not repo_url (the tree's Applications name it).
    clone_url: str | None = None
    files: dict[str, str] = {}
    # What the deployed environment sets beyond its file (environments.loader.overrides_of).
    overrides: dict[str, Any] = {}
    # "user:password" for a registry that is not ECR (`local`'s), to check it holds each digest.
    registry_credentials: str | None = None


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def render(env: Environment, *, cloud: CloudMetadata, image_tag: str | None = None,
           clone_url: str | None = None) -> RenderedTree:
    return render_environment(env, image_tag=image_tag, cloud=cloud, repo_url=clone_url)


def file_digests(tree: Mapping[str, bytes]) -> dict[str, str]:
    return {path: digest(tree[path]) for path in sorted(tree)}


def _publish_tree(spec: PublishSpec, env: Environment, tree: Any) -> str:
    """Hand the tree to the GitOps room's publisher; the commit it made, or the tip it left alone."""
    result = publisher.publish(env, tree, repo_url=spec.repo_url)
    return result.commit or _tip(spec.repo_url, spec.branch)


def _tip(repo_url: str, branch: str) -> str:
    """The branch's current commit: what an unchanged publish leaves in place."""
    url = str(local_path(repo_url)) if is_local(repo_url) else repo_url
    done = subprocess.run(["git", "ls-remote", "--heads", url, f"refs/heads/{branch}"], capture_output=True,
                          text=True, check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if done.returncode != 0 or not done.stdout.strip():
        raise PublishError(f"cannot read branch {branch} of {mask(repo_url)}: {done.stderr.strip() or 'no such branch'}")
    return done.stdout.split()[0]


def run_publish(spec: PublishSpec) -> str:
    cloud = CloudMetadata.model_validate(spec.cloud)
    env = as_deployed(load_environment(spec.env_name, spec.overrides), cloud)
    tree = render(env, cloud=cloud, image_tag=spec.image_tag, clone_url=spec.clone_url)
    seen = file_digests(tree)
    if seen != spec.files:
        changed = sorted(p for p in set(seen) | set(spec.files) if seen.get(p) != spec.files.get(p))
        raise PublishError(
            f"env {spec.env_name}: the rendered tree differs from the one the preview showed "
            f"({len(changed)} file(s), first {changed[0]}); nothing was published: run `pulumi up` again"
        )
    try:  # before any commit: a digest the registry lacks would end the first sync in ImagePullBackOff
        require_held(env, credentials=spec.registry_credentials)
    except GitOpsError as e:
        raise PublishError(str(e)) from None
    try:
        return _publish_tree(spec, env, tree)
    except PublishError:
        raise
    except Exception as e:  # the publisher's own errors carry the details; say where it happened
        raise PublishError(f"env {spec.env_name}: publishing to {spec.repo_url} [{spec.branch}] failed: {e}") from e


class GitOpsPublishProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = PublishSpec.model_validate({k: v for k, v in props.items() if k in PublishSpec.model_fields})
        commit = run_publish(spec)
        return CreateResult(id_=f"{spec.repo_url}#{spec.branch}:{spec.path}", outs={**props, "commit": commit})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        fields = [f for f in PublishSpec.model_fields if olds.get(f) != news.get(f)]
        return DiffResult(changes=bool(fields), replaces=[f for f in fields if f in LOCATION_FIELDS],
                          delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        spec = PublishSpec.model_validate({k: v for k, v in news.items() if k in PublishSpec.model_fields})
        return UpdateResult(outs={**news, "commit": run_publish(spec)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: published commits stay in the GitOps repository's history."""


class GitOpsPublish(Resource):
    """`commit` is the GitOps commit that holds the tree this stack last published."""

    commit: pulumi.Output[str]
    files: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, *, env_name: str, repo_url: pulumi.Input[str], branch: str, path: str,
                 cloud: pulumi.Input[dict[str, Any]], files: pulumi.Input[dict[str, str]], image_tag: str | None = None, clone_url: str | None = None,
                 overrides: dict[str, Any] | None = None, registry_credentials: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        # The credentials stay secret in the state (and out of every diff shown).
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["registry_credentials"]))
        super().__init__(
            GitOpsPublishProvider(),
            name,
            {"env_name": env_name, "repo_url": repo_url, "branch": branch, "path": path, "cloud": cloud,
             "image_tag": image_tag, "clone_url": clone_url, "files": files,
             "overrides": overrides or {}, "registry_credentials": registry_credentials, "commit": None},
            opts,
        )
