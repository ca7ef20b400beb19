"""Argo CD auto-sync for real: the `local` tree published with the project's publisher to a
git server on 127.0.0.1, Argo CD's repo-server and application-controller (the pinned build)
syncing it into a kwok cluster, as a user's cluster would follow its GitOps branch.

Tests run in order on one loop (module scope): first sync, a changed value, self-heal, prune.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from lightkube.resources.core_v1 import ConfigMap

from apps.waiting import wait_for
from argocd import objects
from argocd.render import RenderedObject, RenderedTree
from environments import load_environment
from harness.argocd_local.loop import GitOpsLoop, Published, gitops_loop
from harness.argocd_local.processes import cached_tool
from harness.clusters.kube import to_resource
from harness.clusters.providers import ClusterProvider
from harness.clusters.session import cluster_session
from infra.kube_api import get_or_none

# The first test's setup builds Argo CD when the toolchain cache lacks it: about 15 minutes on
# two busy cores, past the suite's 900s per-test timeout; later runs reuse the build.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900 if cached_tool("argocd") else 2700)]


@pytest.fixture(scope="module")
def loop(cluster_provider: ClusterProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsLoop]:
    if cluster_provider.name != "kwok":
        pytest.skip(f"--cluster={cluster_provider.name}: Argo CD runs as local processes against a kwok cluster only")
    env = load_environment("local")
    workdir = tmp_path_factory.mktemp("argocd-loop")
    with cluster_session(cluster_provider, f"mlops-argocd-{os.getpid()}", env=env) as info:
        with gitops_loop(info.kubeconfig, env=env, workdir=workdir) as running_loop:
            yield running_loop


@pytest.fixture(scope="module")
def first(loop: GitOpsLoop) -> Published:
    published = loop.publish()
    loop.bootstrap(published)
    loop.wait_settled(published)
    return published


def _live(loop: GitOpsLoop, obj: RenderedObject) -> Any:
    """The object as the cluster has it, or None."""
    return get_or_none(loop.client, type(to_resource(obj.manifest)), obj.name, namespace=obj.namespace)


def _changed(old: RenderedTree, new: RenderedTree) -> list[RenderedObject]:
    before = {o.path: old[o.path] for o in old.objects}
    return [o for o in new.objects if o.synced and before.get(o.path) != new[o.path]]


def _written_by_argocd_since(loop: GitOpsLoop, tree: RenderedTree, app: str, since: datetime) -> set[tuple[str, str, str]]:
    """The app's objects that Argo CD's controller wrote at or after `since`, from their managedFields.

    What one sync operation applied is only in the Application's last operation, and a self-heal
    sync at the same revision can replace it within a second: the objects themselves say who wrote
    them when, whatever ran after.
    """
    written = set()
    for obj in tree.app_objects(app):
        live = _live(loop, obj)
        for entry in (live is not None and live.metadata.managedFields) or []:
            if "argocd" in (entry.manager or "") and entry.time and entry.time >= since:
                written.add((obj.kind, obj.namespace or "", obj.name))
    return written


def test_root_app_syncs_every_app(loop: GitOpsLoop, first: Published) -> None:
    statuses = loop.wait_settled(first)
    assert set(statuses) == first.application_names()
    missing = [o.ref for o in first.tree.app_objects() if _live(loop, o) is None]
    assert not missing, f"synced apps lack objects: {missing}\n{loop.diagnostics()}"


def test_changed_value_is_applied_and_nothing_else(loop: GitOpsLoop, first: Published) -> None:
    limit = first.env.apps.inference_api.batch_limit
    published_at = datetime.now(UTC).replace(microsecond=0)  # managedFields keep whole seconds
    changed = loop.publish({"apps": {"inference_api": {"batch_limit": limit + 1}}})
    touched = _changed(first.tree, changed.tree)
    assert touched and {o.app for o in touched} == {"inference-api"}, [o.ref for o in touched]

    app = objects.application_name(changed.env, "inference-api")
    statuses = loop.wait_settled(changed)
    applied = _written_by_argocd_since(loop, changed.tree, "inference-api", published_at)
    assert applied == {(o.kind, o.namespace or "", o.name) for o in touched}, loop.diagnostics()
    assert statuses[app].synced_revision == changed.revision
    # Every other app (and the root) saw the new revision, found nothing to apply, ran no sync.
    idle = {name: s.synced_revision for name, s in statuses.items() if name != app}
    assert set(idle.values()) == {first.revision}, idle
    assert not any(_written_by_argocd_since(loop, changed.tree, name, published_at)
                   for name in {o.app for o in changed.tree.app_objects()} - {"inference-api"})

    config = next(o for o in touched if o.kind == "ConfigMap")
    live = loop.client.get(ConfigMap, config.name, namespace=config.namespace)
    assert live.data == config.manifest["data"], loop.diagnostics()
    assert str(limit + 1) in live.data.values()


def test_self_heal_restores_a_deleted_object(loop: GitOpsLoop, first: Published) -> None:
    current = loop.current
    assert current is not None
    config = next(o for o in current.tree.app_objects("inference-api") if o.kind == "ConfigMap")
    original = loop.client.get(ConfigMap, config.name, namespace=config.namespace)

    loop.client.delete(ConfigMap, config.name, namespace=config.namespace)

    def restored() -> ConfigMap | None:
        live = _live(loop, config)
        return live if live is not None and live.metadata.uid != original.metadata.uid else None

    healed = wait_for(restored, what=f"{config.ref} restored by selfHeal", timeout=180, interval=1.0, describe=loop.diagnostics)
    assert healed.data == config.manifest["data"]
    loop.wait_settled(current)


def test_prune_deletes_a_removed_app(loop: GitOpsLoop, first: Published) -> None:
    removed = loop.publish({"apps": {"cleanup": {"enabled": False}}})
    gone = objects.application_name(removed.env, "cleanup")
    assert gone not in removed.application_names()
    loop.wait_settled(removed)

    cleanup_objects = first.tree.app_objects("cleanup")
    assert cleanup_objects
    wait_for(
        lambda: all(_live(loop, o) is None for o in cleanup_objects),
        what="the cleanup app's objects pruned", timeout=180, interval=1.0, describe=loop.diagnostics,
    )
    kept = [o.ref for o in removed.tree.app_objects() if _live(loop, o) is None]
    assert not kept, f"prune took more than the removed app: {kept}"
