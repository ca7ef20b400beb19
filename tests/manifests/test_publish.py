"""Publishing to real git repositories: first publish, idempotence, diff, refusal, races."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from argocd.errors import ValidationFailed
from argocd.publish import diff, publish
from argocd.render import RenderedTree
from environments import load_environment
from tests.manifests.conftest import commits, git, render, tree_files

pytestmark = pytest.mark.manifests
ROOT = Path(__file__).resolve().parents[2]


def env_at(repo: Path, name: str = "local", **overrides: object):
    return load_environment(name, {"gitops": {"repo_url": str(repo)}, **overrides})


def test_first_publish_creates_the_bare_repo_and_commits_the_whole_tree(tmp_path: Path) -> None:
    repo = tmp_path / "gitops" / "local.git"
    env = env_at(repo)
    tree = render(env)
    result = publish(env, tree, source="0123456789abcdef")
    assert result.changed and (repo / "HEAD").is_file()
    assert commits(repo) == [result.commit]
    assert tree_files(repo) == {f"{env.gitops.path}/{p}" for p in tree}
    message = git(repo, "log", "-1", "--format=%B")
    assert "Environment: local" in message and "Source-Commit: 0123456789abcdef" in message
    shown = git(repo, "show", f"main:{env.gitops.path}/apps/inference-api/deployment-ml-inference-api.yaml")
    assert shown.encode() == tree["apps/inference-api/deployment-ml-inference-api.yaml"]


def test_publishing_an_unchanged_tree_makes_no_commit(tmp_path: Path) -> None:
    env = env_at(tmp_path / "r.git")
    tree = render(env)
    first = publish(env, tree)
    again = publish(env, render(env))
    assert not again.changed and again.commit is None
    assert commits(tmp_path / "r.git") == [first.commit]


def test_a_changed_threshold_is_one_small_commit_previewed_by_diff(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    env = env_at(repo)
    publish(env, render(env))
    changed = env_at(repo, apps={"inference_api": {"autoscaling": {"cpu_utilization": 55}}})
    tree = render(changed)
    preview = diff(changed, tree)
    assert "-          averageUtilization: 70" in preview and "+          averageUtilization: 55" in preview
    assert len(commits(repo)) == 1, "diff must not write"
    result = publish(changed, tree)
    assert len(commits(repo)) == 2 and result.commit is not None
    names = git(repo, "show", "--name-only", "--format=", result.commit).split()
    assert names == [f"{env.gitops.path}/apps/inference-api/horizontalpodautoscaler-ml-inference-api.yaml"]
    assert result.diff == preview


def test_diff_against_a_missing_repo_creates_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "absent.git"
    env = env_at(repo)
    text = diff(env, render(env))
    assert "applications/inference-api.yaml" in text
    assert not repo.exists()


def test_objects_no_longer_rendered_are_removed(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    env = env_at(repo)
    publish(env, render(env))
    staged = env_at(repo, apps={"cleanup": {"enabled": False}})
    publish(staged, render(staged))
    assert not [f for f in tree_files(repo) if "/apps/cleanup/" in f or f.endswith("applications/cleanup.yaml")]


def test_invalid_tree_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    env = env_at(repo)
    tree = render(env)
    objs = []
    for obj in tree.objects:
        if obj.kind == "Deployment":
            manifest = copy.deepcopy(obj.manifest)
            manifest["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
            obj = dataclasses.replace(obj, manifest=manifest)
        objs.append(obj)
    with pytest.raises(ValidationFailed, match="privileged"):
        publish(env, RenderedTree(env.name, objs))
    assert not repo.exists()
    good = publish(env, tree)
    with pytest.raises(ValidationFailed):
        publish(env, RenderedTree(env.name, objs))
    assert commits(repo) == [good.commit]


def test_publishing_another_envs_tree_is_refused(tmp_path: Path) -> None:
    env = env_at(tmp_path / "r.git")
    with pytest.raises(Exception, match="rendered for env 'prod'"):
        publish(env, render(load_environment("prod")))


def test_concurrent_publishers_never_lose_a_commit(tmp_path: Path) -> None:
    repo = tmp_path / "race.git"
    go = tmp_path / "go"
    writers = {f"envs/w{i}": [f"t{i}-{n}" for n in range(3)] for i in range(4)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.manifests._publisher", str(repo), str(go), path, *tags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path, tags in writers.items()
    ]
    try:
        # Let every process render and warm its caches first: `_publisher` prints nothing until go.
        publish(env_at(repo), render(env_at(repo)))  # the repo exists before the race
        go.touch()
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    results = [r for out, _ in outputs for r in json.loads(out)]
    pushed = {r["commit"] for r in results}
    history = set(commits(repo))
    assert len(pushed) == sum(len(t) for t in writers.values())
    assert pushed <= history, "a published commit is missing from the branch"
    assert len(history) == len(pushed) + 1
    for path, tags in writers.items():
        deployment = git(repo, "show", f"main:{path}/apps/inference-api/deployment-ml-inference-api.yaml")
        assert f"ml-inference-api:{tags[-1]}" in deployment, f"{path}: last publish of that writer not on the branch"
    print("attempts per publish:", sorted(r["attempts"] for r in results))


def test_file_urls_work_and_credentials_are_masked_in_messages(tmp_path: Path) -> None:
    from argocd.publish import mask

    env = env_at(tmp_path / "r.git")
    url = f"file://{tmp_path / 'r.git'}"
    result = publish(env, render(env), repo_url=url)
    assert result.changed and commits(tmp_path / "r.git") == [result.commit]
    assert mask("https://bot:s3cr3t@git.example.com/gitops.git") == "https://***@git.example.com/gitops.git"
    unreachable = env_at(tmp_path / "r.git", gitops={"repo_url": "https://bot:s3cr3t@127.0.0.1:9/gitops.git"})
    with pytest.raises(Exception) as info:
        publish(unreachable, render(unreachable))
    assert "s3cr3t" not in str(info.value) and "***@127.0.0.1" in str(info.value)
