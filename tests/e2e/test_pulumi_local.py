"""`pulumi up -s local` for real: the toolchain's Pulumi CLI and engine, a file backend with a
passphrase from the test's environment, and the project's program (the Kubernetes half of
`infra.platform.deploy`) against a kwok cluster; Argo CD, run by the harness, syncs what the
stack published.

Tests run in order on one stack (module scope): up, Argo CD syncs, a second up changes
nothing, a preview after an environment change shows exactly that change, destroy removes
what the stack made and leaves the GitOps history alone.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from lightkube import ApiError, Client
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import ConfigMap, Namespace
from pulumi import automation as auto
from pulumi.automation import OpType

from argocd import objects
from argocd.render import render_environment
from environments import Environment, load_environment
from harness.argocd_local import upstream
from harness.argocd_local.applications import describe_applications
from harness.argocd_local.loop import GitOpsLoop, application_names, gitops_loop, prepare_cluster
from harness.ports import free_port
from harness.argocd_local.processes import cached_tool
from harness.clusters.kube import client_for, to_resource
from harness.clusters.nodes import for_simulated_nodes
from harness.clusters.providers import ClusterProvider
from harness.clusters.session import cluster_session
from harness.stack import PASSPHRASE_ENV, LocalSite, run
from infra.publish import file_digests

# Building the Pulumi CLI (and Argo CD) when the toolchain cache lacks them takes minutes to
# a quarter of an hour on two busy cores: past the suite's 900s per-test timeout.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900 if cached_tool("pulumi") and cached_tool("argocd") else 2700)]

PASSPHRASE = "a passphrase of the test environment, never written down"


@dataclass
class Site:
    local: LocalSite
    client: Client
    kubeconfig: Path

    @property
    def env(self) -> Environment:
        return self.local.env

    @property
    def repo(self) -> Path:
        return self.local.repo

    @property
    def clone_url(self) -> str:
        return self.local.clone_url

    def stack(self, env: Environment | None = None) -> auto.Stack:
        return self.local.stack(self.kubeconfig, env=env)

    def commits(self) -> list[str]:
        return git(self.repo, "rev-list", self.env.gitops.branch).split()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def site(cluster_provider: ClusterProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if cluster_provider.name != "kwok":
        pytest.skip(f"--cluster={cluster_provider.name}: Argo CD runs as local processes against a kwok cluster only")
    workdir = tmp_path_factory.mktemp("pulumi-local")
    env = for_simulated_nodes(load_environment("local", {"gitops": {"repo_url": str(workdir / "repos" / "gitops.git")}}))
    name = f"mlops-pulumi-{os.getpid()}"
    local = LocalSite.of(env, cluster=name, state=workdir / "stacks", git_port=free_port())
    with pytest.MonkeyPatch.context() as mp, cluster_session(cluster_provider, name, env=env) as info:
        mp.setenv(PASSPHRASE_ENV, PASSPHRASE)
        client = client_for(info.kubeconfig)
        prepare_cluster(client, render_environment(env, repo_url=local.clone_url))
        yield Site(local, client, info.kubeconfig)


@pytest.fixture(scope="module")
def first_up(site: Site) -> auto.UpResult:
    return run("up", lambda: site.stack().up(refresh=True))


@pytest.fixture(scope="module")
def loop(site: Site, first_up: auto.UpResult) -> Iterator[GitOpsLoop]:
    with gitops_loop(site.kubeconfig, env=site.env, workdir=site.local.state / "loop", repo=site.repo,
                     git_port=site.local.git_port, argocd_installed=True) as running_loop:
        yield running_loop


def _exists(client: Client, manifest: dict) -> bool:
    load_in_cluster_generic_resources(client)
    meta = manifest["metadata"]
    try:
        client.get(type(to_resource(manifest)), meta["name"], namespace=meta.get("namespace"))
    except ApiError as e:
        if e.status.code == 404:
            return False
        raise
    except httpx2.HTTPStatusError as e:  # the kind's API itself is gone (its CRD was deleted)
        if e.response.status_code == 404:
            return False
        raise
    return True


def _stack_objects(site: Site) -> list[dict]:
    """What the stack makes in the cluster: Argo CD's namespace, CRDs and configuration, the
    AppProject and the root application."""
    ns = site.env.gitops.argocd_namespace
    config = [{**m, "metadata": {**m["metadata"], "namespace": ns}} for m in upstream.base_config(namespace=ns)]
    tree = render_environment(site.env, repo_url=site.clone_url)
    bootstrap = [o.manifest for o in tree.objects if o.path.startswith("bootstrap/")]
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, *upstream.crds(), *config, *bootstrap]


def test_up_applies_argocd_and_the_bootstrap_and_publishes(site: Site, first_up: auto.UpResult) -> None:
    expected = _stack_objects(site)
    changes = first_up.summary.resource_changes or {}
    # every object, the publish step, and the stack's two components and root
    assert changes == {"create": len(expected) + 1 + 3}, first_up.stdout[-3000:]
    missing = [f"{m['kind']} {m['metadata']['name']}" for m in expected if not _exists(site.client, m)]
    assert not missing, f"the stack reported success but the cluster lacks: {missing}"
    ns = site.client.get(Namespace, site.env.gitops.argocd_namespace)
    assert (ns.metadata.labels or {})["pod-security.kubernetes.io/enforce"] == "baseline"
    # the publish step committed the tree Argo CD will clone, and the output names that commit
    commit = first_up.outputs["gitops_commit"].value
    assert site.commits()[0] == commit
    files = git(site.repo, "ls-tree", "-r", "--name-only", commit).split()
    assert f"{site.env.gitops.path}/bootstrap/root-application.yaml" in files
    root = git(site.repo, "show", f"{commit}:{site.env.gitops.path}/bootstrap/root-application.yaml")
    assert f"repoURL: {site.clone_url}" in root


def test_argocd_syncs_what_the_stack_published(site: Site, first_up: auto.UpResult, loop: GitOpsLoop) -> None:
    tree = render_environment(site.env, repo_url=site.clone_url)
    names = application_names(site.env, tree)
    statuses = loop.wait_apps(names, first_up.outputs["gitops_commit"].value)
    assert set(statuses) == names and all(s.sync == "Synced" for s in statuses.values()), loop.diagnostics()
    assert objects.root_name(site.env) in statuses


def test_second_up_changes_nothing(site: Site, first_up: auto.UpResult, loop: GitOpsLoop) -> None:
    before = site.commits()
    again = run("up", lambda: site.stack().up(refresh=True))
    changes = again.summary.resource_changes or {}
    assert set(changes) == {"same"}, f"a second up changed {changes}:\n{again.stdout[-3000:]}"
    assert site.commits() == before
    assert again.outputs["gitops_commit"].value == first_up.outputs["gitops_commit"].value


def test_up_restores_an_object_deleted_by_hand(site: Site, loop: GitOpsLoop) -> None:
    ns = site.env.gitops.argocd_namespace
    site.client.delete(ConfigMap, "argocd-rbac-cm", namespace=ns)
    again = run("up", lambda: site.stack().up(refresh=True))
    changes = again.summary.resource_changes or {}
    assert changes.get(OpType.CREATE) == 1 and set(changes) == {OpType.CREATE, OpType.SAME}, again.stdout[-3000:]
    assert site.client.get(ConfigMap, "argocd-rbac-cm", namespace=ns).metadata.name == "argocd-rbac-cm"


def test_preview_after_an_environment_change_shows_exactly_that_change(site: Site, loop: GitOpsLoop) -> None:
    changed_env = for_simulated_nodes(load_environment("local", {"gitops": {"repo_url": str(site.repo)},
                                                                 "apps": {"inference_api": {"reload_interval_s": 7.0}}}))
    before = file_digests(render_environment(site.env, repo_url=site.clone_url))
    after = file_digests(render_environment(changed_env, repo_url=site.clone_url))
    expected_files = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert expected_files, "the change must change the tree"

    preview = run("preview", lambda: site.stack(changed_env).preview(diff=True))
    assert preview.change_summary == {"same": sum(preview.change_summary.values()) - 1, "update": 1}, preview.stdout
    # the one update is the publish step, and its diff names exactly the files that change
    updated = re.findall(r"\(update\)\n(?:\s*\[id=.*\]\n)?\s*\[urn=\S+::([^:\]]+)\]", preview.stdout)
    assert updated == ["local-gitops-publish"], preview.stdout
    shown = set(re.findall(r'^\s*~ (\S+)\s*: "sha256:', preview.stdout, re.MULTILINE))
    assert shown == expected_files, preview.stdout
    assert site.commits() == git(site.repo, "rev-list", site.env.gitops.branch).split()  # a preview publishes nothing


def test_state_never_holds_the_passphrase(site: Site, first_up: auto.UpResult) -> None:
    state = site.local.state
    leaked = [p for p in state.rglob("*") if p.is_file() and PASSPHRASE.encode() in p.read_bytes()]
    assert not leaked and not (state / ".passphrase").exists()


def test_destroy_removes_what_the_stack_made_and_leaves_git_history(site: Site, loop: GitOpsLoop) -> None:
    history = site.commits()
    tree = render_environment(site.env, repo_url=site.clone_url)
    workloads = [o.manifest for o in tree.app_objects() if o.kind in ("Deployment", "CronJob")]
    assert all(_exists(site.client, m) for m in workloads), "Argo CD should have synced the workloads first"
    try:
        result = run("destroy", lambda: site.stack().destroy())
    except Exception:
        print(describe_applications(site.client, site.env.gitops.argocd_namespace), loop.argocd.logs(), sep="\n")
        raise
    assert result.summary.resource_changes.get(OpType.DELETE) == len(_stack_objects(site)) + 1 + 3, result.stdout[-3000:]
    left = [f"{m['kind']} {m['metadata']['name']}" for m in _stack_objects(site) if _exists(site.client, m)]
    assert not left, f"destroy left {left}"
    # the root application's cascade (Argo CD, still running) took the apps' workloads with it
    remaining = [f"{m['kind']} {m['metadata']['name']}" for m in workloads if _exists(site.client, m)]
    assert not remaining, f"the cascade left {remaining}\n{loop.argocd.logs()}"
    assert site.commits() == history
    with pytest.raises(ApiError):
        site.client.get(CustomResourceDefinition, "applications.argoproj.io")
    with pytest.raises(ApiError):
        site.client.get(ConfigMap, "argocd-cm", namespace=site.env.gitops.argocd_namespace)
