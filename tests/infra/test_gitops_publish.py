"""GitOps bootstrap: Argo CD pinned, bootstrap objects from the rendered tree, and the publish
resource wired with the env's repo; the publish provider exercised against a real git repo."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import yaml
from typer.testing import CliRunner

from apps.addons import charts
from apps.cloud import CloudMetadata
from argocd import catalog
from argocd.render import RenderedTree, render_environment
from environments import Environment, load_environment
from harness.cli import app as cli
from infra.errors import PublishError
from infra.gitops import CASCADE_FINALIZER
from infra.mocks import Run, pushed_digests, run_program
from infra.publish import GitOpsPublishProvider, PublishSpec, file_digests
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

DYNAMIC = "pulumi-python:dynamic:Resource"


def test_argocd_installed_from_pinned_chart(env: Environment, run: Run) -> None:
    argo = run.one("kubernetes:helm.sh/v3:Release", "-argocd").inputs
    assert argo["chart"] == "argo-cd"
    assert argo["version"] == aws(env).argocd_chart_version
    assert argo["namespace"] == env.gitops.argocd_namespace
    assert argo["repositoryOpts"]["repo"] == "https://argoproj.github.io/argo-helm"
    # whatever the chart's default, it runs the environment's one Argo CD version
    assert argo["values"]["global"]["image"]["tag"] == env.gitops.argocd_version


def _published_tree(env: Environment, run: Run) -> tuple[CloudMetadata, RenderedTree]:
    pub = run.one(DYNAMIC, "-publish").inputs
    cloud = CloudMetadata.model_validate(pub["cloud"])
    return cloud, render_environment(env, cloud=cloud)


def test_publish_resource_wired_with_env_repo_registry_and_roles(env: Environment, run: Run) -> None:
    pub = run.one(DYNAMIC, "-publish").inputs
    assert (pub["repo_url"], pub["branch"], pub["path"]) == (env.gitops.repo_url, env.gitops.branch, env.gitops.path)
    cloud, tree = _published_tree(env, run)
    urls = [r.outputs["repositoryUrl"] for r in run.of_type("aws:ecr/repository:Repository")]
    assert all(u.startswith(cloud.registry + "/") for u in urls)
    # every app and every add-on that calls AWS gets its role's ARN
    arns = {r.outputs["arn"] for r in run.of_type("aws:iam/role:Role")}
    holders = {a.name for a in catalog.enabled_apps(env)} | {name for name, _, _ in charts.calling_aws(env)}
    assert set(cloud.role_arns) == holders and set(cloud.role_arns.values()) <= arns
    # the digests are those of the very tree the publisher will send (so the diff is honest)
    assert pub["files"] == file_digests(tree)
    assert any(p.startswith("apps/inference-api/") for p in pub["files"])


def test_a_tree_rendered_from_the_stack_outputs_is_what_the_stack_publishes(
        env: Environment, run: Run, tmp_path: Path) -> None:
    """What a reviewer renders with `--stack-outputs` is byte for byte what `pulumi up` commits."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({k: v for k, v in run.outputs.items() if k != "kubeconfig"}, default=str))
    result = CliRunner().invoke(cli, ["argocd", "render", env.name, "--stack-outputs", str(outputs),
                                      "--out", str(tmp_path / "tree")])
    assert result.exit_code == 0, result.output
    rendered = {p.relative_to(tmp_path / "tree").as_posix(): p.read_bytes() for p in (tmp_path / "tree").rglob("*.yaml")}
    assert file_digests(rendered) == run.one(DYNAMIC, "-publish").inputs["files"]
    # and it names what the stack created: the EFS file system behind efs-sc, the VPC
    efs = yaml.safe_load(rendered["apps/aws-efs-csi-driver/storageclass-efs-sc.yaml"])
    assert efs["parameters"]["fileSystemId"] == run.one("aws:efs/fileSystem:FileSystem").id
    alb = yaml.safe_load(rendered["applications/aws-load-balancer-controller.yaml"])
    assert alb["spec"]["sources"][0]["helm"]["valuesObject"]["vpcId"] == run.outputs["vpc_id"]


def test_rendered_images_come_from_the_stack_registry_by_the_pushed_digests(env: Environment, run: Run) -> None:
    cloud, tree = _published_tree(env, run)
    addons = {a.name for a in catalog.ADDONS}  # upstream images at their pinned versions, not ours
    images = {c["image"] for o in tree.objects if o.kind in ("Deployment", "Job", "CronJob") and o.app not in addons
              for c in _pod_spec(o.manifest)["containers"]}
    assert images == {f"{cloud.registry}/{name}@{digest}" for name, digest in pushed_digests().items()}


def _pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


@pytest.mark.parametrize("config, error", [
    ({}, "no digest for image(s) ml-inference-api, ml-pipeline in stack config mlops:imageDigests; "
         "push them first: `mlops images push dev`"),
    ({"mlops:imageDigests": json.dumps({"ml-pipeline": "sha256:" + "0" * 64})}, "no digest for image(s) ml-inference-api"),
    ({"mlops:imageDigests": json.dumps({"ml-pipeline": "latest"})}, "mlops:imageDigests.ml-pipeline is not a sha256 digest"),
])
def test_a_cloud_stack_without_pushed_digests_is_refused_before_anything_is_declared(
        config: dict[str, str], error: str) -> None:
    with pytest.raises(Exception, match=re.escape(error)):
        run_program(load_environment("dev"), config=config)


def test_bootstrap_objects_from_tree_applied_after_publish(env: Environment, run: Run) -> None:
    project = run.by_name(f"{env.name}-gitops-appproject")
    addons = run.by_name(f"{env.name}-gitops-addons-appproject")
    root = run.one("kubernetes:argoproj.io/v1alpha1:Application")
    assert project.inputs["metadata"]["namespace"] == env.gitops.argocd_namespace
    assert project.inputs["spec"]["sourceRepos"] == [env.gitops.repo_url]
    # the upstream charts' project trusts exactly their pinned repositories (and ours)
    assert set(addons.inputs["spec"]["sourceRepos"]) == \
        {env.gitops.repo_url} | {c.repo_url for c in catalog.enabled_charts(env)}
    assert addons.name in root.depends_on
    assert root.inputs["spec"]["source"]["repoURL"] == env.gitops.repo_url
    assert root.inputs["spec"]["source"]["path"] == f"{env.gitops.path}/applications"
    assert CASCADE_FINALIZER in root.inputs["metadata"]["finalizers"], "destroying the root app cascades"
    publish = run.one(DYNAMIC, "-publish")
    assert publish.name in root.depends_on and project.name in root.depends_on


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def spec(tmp_path: Path) -> PublishSpec:
    env = load_environment("dev")
    cloud = CloudMetadata(registry="123456789012.dkr.ecr.us-west-2.amazonaws.com/ml-platform/dev",
                          vpc_id="vpc-0123456789abcdef0", file_system_id="fs-0123456789abcdef0")
    tree = render_environment(env, cloud=cloud)
    return PublishSpec(env_name="dev", repo_url=str(tmp_path / "gitops.git"), branch=env.gitops.branch,
                       path=env.gitops.path, cloud=cloud.model_dump(), files=file_digests(tree))


def test_publish_provider_commits_tree_and_delete_keeps_history(spec: PublishSpec) -> None:
    provider = GitOpsPublishProvider()
    created = provider.create(spec.model_dump())
    assert created.outs is not None
    repo = spec.repo_url
    commit = created.outs["commit"]
    assert _git("--git-dir", repo, "rev-parse", spec.branch) == commit
    listed = _git("--git-dir", repo, "ls-tree", "-r", "--name-only", commit).splitlines()
    assert sorted(p.removeprefix(spec.path + "/") for p in listed) == sorted(spec.files)

    again = provider.update(created.id, created.outs, spec.model_dump())
    assert again.outs is not None and again.outs["commit"] == commit, "an unchanged tree publishes nothing new"

    provider.delete(created.id, created.outs)
    assert _git("--git-dir", repo, "rev-parse", spec.branch) == commit, "destroy never rewrites history"


def test_publish_refuses_a_tree_other_than_the_previewed_one(spec: PublishSpec) -> None:
    stale = spec.model_copy(update={"files": {**spec.files, "apps/gone.yaml": "sha256:0"}})
    with pytest.raises(PublishError, match="differs from the one the preview showed"):
        GitOpsPublishProvider().create(stale.model_dump())
    assert not Path(spec.repo_url).exists(), "nothing was published"


def test_diff_shows_files_and_replaces_on_new_location(spec: PublishSpec) -> None:
    provider = GitOpsPublishProvider()
    old = spec.model_dump()
    assert provider.diff("id", old, old).changes is False
    changed = provider.diff("id", old, {**old, "files": {**spec.files, "apps/new.yaml": "sha256:1"}})
    assert changed.changes is True and changed.replaces == []
    moved = provider.diff("id", old, {**old, "branch": "release"})
    assert moved.replaces == ["branch"]


def test_publish_provider_is_pickled_by_reference() -> None:
    """`pulumi up` runs the provider in another process: it must import it, not carry a copy."""
    import pickle

    import dill

    blob = dill.dumps(GitOpsPublishProvider(), protocol=pickle.DEFAULT_PROTOCOL, recurse=True)
    assert b"infra.publish" in blob
    assert isinstance(dill.loads(blob), GitOpsPublishProvider)


def test_bootstrap_objects_are_those_of_the_published_tree(env: Environment, run: Run) -> None:
    """Rendered before the registry and roles exist, they must still equal the published files."""
    _, tree = _published_tree(env, run)
    for name, path in (("appproject", "bootstrap/appproject.yaml"), ("addons-appproject", "bootstrap/addons-appproject.yaml")):
        project = run.by_name(f"{env.name}-gitops-{name}").inputs
        published = yaml.safe_load(tree[path])
        assert project["metadata"] == published["metadata"] and project["spec"] == published["spec"]
    root = run.one("kubernetes:argoproj.io/v1alpha1:Application").inputs
    published_root = yaml.safe_load(tree["bootstrap/root-application.yaml"])
    assert root["spec"] == published_root["spec"]
    assert {k: v for k, v in root["metadata"].items() if k != "finalizers"} == \
        {k: v for k, v in published_root["metadata"].items() if k != "finalizers"}


def test_local_stack_is_the_kubernetes_half_from_a_kubeconfig() -> None:
    """`local` (no aws block): Argo CD's manifests, the AppProject and root app as Kubernetes
    objects through a kubeconfig, the same publish step, and the clone URL in every Application."""
    from infra.local import LocalTarget
    from infra.mocks import run_program
    from infra.platform import deploy

    local = load_environment("local")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "applications.argoproj.io"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}}
    clone = "git://127.0.0.1:9418/gitops.git"
    target = LocalTarget(kubeconfig="/tmp/kubeconfig", argocd_manifests=(crd, cm), clone_url=clone)

    run = run_program(local, entry=lambda: deploy(local, target))
    assert not [r for r in run.resources if r.type.startswith(("aws:", "eks:", "kubernetes:"))]
    objects = {r.name: r.inputs for r in run.of_type(DYNAMIC) if "manifest" in r.inputs}
    assert set(objects) == {"local-gitops-namespace", "local-gitops-argocd-customresourcedefinition-applications.argoproj.io",
                            "local-gitops-argocd-configmap-argocd-cm", "local-gitops-appproject", "local-gitops-root-app"}
    assert all(o["kubeconfig"] == "/tmp/kubeconfig" for o in objects.values())
    # namespaced configuration lands in Argo CD's namespace; the CRD stays cluster-scoped
    assert objects["local-gitops-argocd-configmap-argocd-cm"]["manifest"]["metadata"]["namespace"] == \
        local.gitops.argocd_namespace
    assert "namespace" not in objects["local-gitops-argocd-customresourcedefinition-applications.argoproj.io"]["manifest"]["metadata"]
    root = objects["local-gitops-root-app"]["manifest"]
    assert root["spec"]["source"]["repoURL"] == clone and CASCADE_FINALIZER in root["metadata"]["finalizers"]
    pub = run.one(DYNAMIC, "-publish").inputs
    assert (pub["repo_url"], pub["clone_url"]) == (local.gitops.repo_url, clone)
    assert CloudMetadata.model_validate(pub["cloud"]) == CloudMetadata()  # no registry, role or cloud id
    assert pub["files"] == file_digests(render_environment(local, repo_url=clone))
    assert run.outputs["gitops_repo"] == local.gitops.repo_url


def test_local_stack_refuses_unreadable_argocd_manifests(tmp_path: Path) -> None:
    from infra.errors import LocalStackError
    from infra.local import read_manifests

    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(LocalStackError, match="mlops:argocdManifests: .*no manifests"):
        read_manifests(tmp_path / "empty.yaml")
    (tmp_path / "bad.yaml").write_text("kind: ConfigMap\n---\nmetadata: {name: x}\n")
    with pytest.raises(LocalStackError, match="bad.yaml: document 1 has no kind or metadata.name"):
        read_manifests(tmp_path / "bad.yaml")


def test_a_large_manifest_travels_as_json_text_and_reads_back_whole() -> None:
    """Argo CD's CRDs are hundreds of KB: as one string the engine handles them in milliseconds
    (as a deep structure, seconds per operation); the provider reads back the same manifest."""
    import json

    from infra.kubernetes_object import AS_TEXT_BYTES, _target
    from infra.local import LocalTarget
    from infra.mocks import run_program
    from infra.platform import deploy

    local = load_environment("local")
    big = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "applicationsets.argoproj.io"},
           "spec": {"versions": [{"name": "v1alpha1", "description": "x" * AS_TEXT_BYTES, "priority": 0}]}}
    small = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}, "data": {"a": "b"}}
    run = run_program(local, entry=lambda: deploy(local, LocalTarget("/tmp/kubeconfig", (big, small))))
    objects = {r.name: r.inputs for r in run.of_type(DYNAMIC) if "manifest" in r.inputs}
    as_text = objects["local-gitops-argocd-customresourcedefinition-applicationsets.argoproj.io"]
    assert isinstance(as_text["manifest"], str)
    kubeconfig, manifest = _target(as_text)
    assert (kubeconfig, manifest) == ("/tmp/kubeconfig", big)
    assert manifest["spec"]["versions"][0]["priority"] == 0 and isinstance(manifest["spec"]["versions"][0]["priority"], int)
    structured = objects["local-gitops-argocd-configmap-argocd-cm"]["manifest"]
    assert isinstance(structured, dict) and structured["data"] == {"a": "b"}
    assert json.loads(as_text["manifest"])["metadata"] == {"name": "applicationsets.argoproj.io"}


def test_the_program_reads_its_stack_config_only_at_its_entry() -> None:
    """`infra` is given the local target; only `__main__.py` (or the harness's inline program) reads config."""
    from infra.errors import LocalStackError
    from infra.mocks import run_program
    from infra.platform import deploy

    local = load_environment("local")
    with pytest.raises(LocalStackError, match="needs a local target"):
        run_program(local, entry=lambda: deploy(local))
