"""`mlops argocd ...` as a user runs it: output, files, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apps.cloud import STACK_OUTPUT
from harness.cli import app
from tests.manifests.conftest import SAMPLE_CLOUD, commits

pytestmark = pytest.mark.manifests
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["argocd", *args])


def test_render_writes_the_tree(tmp_path: Path) -> None:
    result = run("render", "local", "--out", str(tmp_path / "out"), "--image-tag", "abc123")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out/apps/inference-api/deployment-ml-inference-api.yaml").read_text()
    assert "image: ml-inference-api:abc123" in text


def stack_outputs(tmp_path: Path) -> str:
    """`pulumi stack output --json` of a prod stack, as far as the tree is concerned."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({STACK_OUTPUT: SAMPLE_CLOUD.model_dump(), "cluster_name": "ml-inference-prod-cluster"}))
    return str(path)


def test_validate_reports_success(tmp_path: Path) -> None:
    result = run("validate", "prod", "--stack-outputs", stack_outputs(tmp_path))
    assert result.exit_code == 0, result.output
    assert "valid prod" in result.output


def test_a_cloud_tree_needs_its_stack_outputs(tmp_path: Path) -> None:
    """Without them the EFS StorageClass and the load balancer controller would name no real id."""
    bare = run("render", "prod", "--out", str(tmp_path / "out"))
    assert bare.exit_code == 1 and "needs the stack's vpc_id" in bare.output and "--stack-outputs" in bare.output
    assert not (tmp_path / "out").exists()
    (tmp_path / "other.json").write_text('{"kubeconfig": "..."}')
    wrong = run("render", "prod", "--stack-outputs", str(tmp_path / "other.json"))
    assert wrong.exit_code == 1 and "other.json: no 'gitops_metadata' output" in wrong.output
    rendered = run("render", "prod", "--out", str(tmp_path / "out"), "--stack-outputs", stack_outputs(tmp_path))
    assert rendered.exit_code == 0, rendered.output
    storage_class = (tmp_path / "out/apps/aws-efs-csi-driver/storageclass-efs-sc.yaml").read_text()
    assert f"fileSystemId: {SAMPLE_CLOUD.file_system_id}" in storage_class


def test_publish_then_diff_then_publish_again(tmp_path: Path) -> None:
    repo, outputs = tmp_path / "g.git", stack_outputs(tmp_path)
    first = run("publish", "prod", "--repo-url", str(repo), "--no-show-diff", "--stack-outputs", outputs)
    assert first.exit_code == 0 and "published prod" in first.output, first.output
    same = run("diff", "prod", "--repo-url", str(repo), "--stack-outputs", outputs)
    assert same.exit_code == 0 and "no changes for prod" in same.output
    again = run("publish", "prod", "--repo-url", str(repo), "--stack-outputs", outputs)
    assert again.exit_code == 0 and "up to date prod" in again.output and "[main]" in again.output
    assert len(commits(repo)) == 1


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("validate", "nope"), "no such environment"),
        (("render", "local", "--image-tag", "latest"), "not a tag we deploy"),
    ],
)
def test_errors_are_one_line_and_non_zero(args: tuple[str, ...], text: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], result.output


def test_job_prints_a_backfill_ready_for_kubectl() -> None:
    import yaml

    result = run("job", "prod", "--start", "20250101", "--end", "20250110", "--image-tag", "rel-1")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.output)
    assert manifest["kind"] == "Job" and manifest["spec"]["completionMode"] == "Indexed"
    assert manifest["spec"]["completions"] == 10
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"].endswith("ml-pipeline:rel-1")
    bad = run("job", "prod", "--start", "20250110", "--end", "20250101")
    assert bad.exit_code == 1 and bad.output.startswith("error: backfill: end 20250101 is before start"), bad.output


def test_manual_runs_are_named_per_partition_so_a_second_one_does_not_clash() -> None:
    import yaml

    first, second = run("job", "prod", "--partition", "20261201"), run("job", "prod", "--partition", "2026-12-02")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    jobs = [yaml.safe_load(r.output) for r in (first, second)]
    assert [j["metadata"]["name"] for j in jobs] == ["pcc-manual-run-20261201", "pcc-manual-run-20261202"]
    assert {"name": "PARTITION_DATE", "value": "20261202"} in jobs[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    # Without --partition: yesterday's, pinned in the name as well.
    assert yaml.safe_load(run("job", "prod").output)["metadata"]["name"].startswith("pcc-manual-run-20")
    for bad in ("2026-13-01", "yesterday", "20261202; rm"):
        result = run("job", "prod", "--partition", bad)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0] == f"error: --partition {bad!r}: expected a date as YYYYMMDD (or YYYY-MM-DD)"
