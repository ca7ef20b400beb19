"""Every command group of `mlops` ends a bad argument the same way: one `error:` line on stderr, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.cli import app


NO_SUCH_ENV = "no such environment 'nope'"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["env", "show", "nope"], NO_SUCH_ENV),
        (["env", "check", "nope"], NO_SUCH_ENV),
        (["apps", "train", "--env", "nope"], NO_SUCH_ENV),
        (["apps", "registry", "list"], "no registry: pass --registry"),
        (["apps", "batch", "train-sample"], "no registry: pass --registry"),
        (["apps", "fraud", "run", "bogus"], "stage: expected one of data-gather"),
        (["apps", "cleanup", "run", "--env", "nope"], NO_SUCH_ENV),
        (["argocd", "render", "nope"], NO_SUCH_ENV),
        (["infra", "plan", "nope"], NO_SUCH_ENV),
        (["infra", "destroy-order", "local"], "has no aws block"),
        (["harness", "cluster", "create", "--provider", "bogus"], "unknown provider 'bogus'"),
        (["harness", "load", "thresholds", "--env", "nope"], NO_SUCH_ENV),
        (["harness", "toolchain", "path", "nope"], "unknown tool 'nope'"),
        (["stack", "preview", "nope"], NO_SUCH_ENV),
        (["up", "nope"], NO_SUCH_ENV),
        (["images", "push", "nope"], NO_SUCH_ENV),
        (["images", "push", "dev"], "pushing to its ECR needs the stack's outputs: --stack-outputs FILE"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_bad_argument_is_one_error_line_and_exit_1(args: list[str], text: str) -> None:
    result = CliRunner().invoke(app, args, env={"MODEL_REGISTRY_URI": None})
    lines = result.stderr.splitlines()
    assert result.exit_code == 1, (result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.stderr


def test_an_error_message_is_text_not_markup() -> None:
    from apps.cli_errors import fail

    runner_app = typer.Typer()

    @runner_app.command()
    def broken() -> None:
        fail("branch [main] of /tmp/gitops.git [bold]")

    result = CliRunner().invoke(runner_app, [])
    assert result.exit_code == 1 and result.stderr == "error: branch [main] of /tmp/gitops.git [bold]\n"


def test_an_option_read_from_the_environment_is_read_when_the_command_runs(tmp_path) -> None:
    """QUEUE_ROOT set after import still counts (a default evaluated at import would miss it)."""
    (tmp_path / "queue").mkdir()
    result = CliRunner().invoke(app, ["apps", "fraud", "status"], env={"QUEUE_ROOT": str(tmp_path)})
    assert result.exit_code == 0, (result.output, result.exception)
    assert "/mnt/flashblade" not in result.output


def test_an_ecr_push_without_aws_credentials_fails_before_any_build_naming_the_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real boto3 against no credentials: one line naming the registry and what to do."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"gitops_metadata": {"registry": "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/ml/dev"}}))
    result = CliRunner().invoke(app, ["images", "push", "dev", "--stack-outputs", str(outputs)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "error: ECR login to 123456789012.dkr.ecr.ap-southeast-2.amazonaws.com failed: Unable to locate credentials; "
        "give this shell AWS credentials for account 123456789012 (AWS_PROFILE, `aws sso login`)"]


def test_an_image_push_to_a_registry_that_is_not_ecr_is_refused_naming_it(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"gitops_metadata": {"registry": "ghcr.io/acme"}}))
    result = CliRunner().invoke(app, ["images", "push", "dev", "--stack-outputs", str(outputs)])
    assert result.exit_code == 1 and "'ghcr.io/acme' is not an ECR registry" in result.stderr, result.output
