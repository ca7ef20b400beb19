"""`mlops apps train / registry`: what an operator types, end to end on a file registry."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from apps.cli import app
from apps.inference import ModelRegistry

runner = CliRunner()


def test_train_promote_rollback_from_the_command_line(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/models"
    first = runner.invoke(app, ["train", "--registry", uri, "--samples", "300", "--promote"])
    assert first.exit_code == 0, first.output
    v1 = first.output.strip().splitlines()[-1]
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{int(i % 7 > 3)}\n" for i in range(200)))
    second = runner.invoke(app, ["train", "--registry", uri, "--data", str(csv), "--classifier", "logistic_regression"])
    assert second.exit_code == 0, second.output
    v2 = second.output.strip().splitlines()[-1]
    registry = ModelRegistry(uri)
    assert registry.active_version() == v1 and registry.load(v2).schema.features == ["a", "b"]

    assert runner.invoke(app, ["registry", "promote", v2, "--registry", uri]).exit_code == 0
    assert registry.active_version() == v2
    shown = runner.invoke(app, ["registry", "show", "--registry", uri])
    assert '"classifier": "logistic_regression"' in shown.output
    assert runner.invoke(app, ["registry", "rollback", "--registry", uri]).exit_code == 0
    assert registry.active_version() == v1
    failed = runner.invoke(app, ["registry", "rollback", "--registry", uri])
    assert failed.exit_code == 1 and "nothing to roll back to" in failed.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/models"
    bad = runner.invoke(app, ["train", "--registry", uri, "--classifier", "xgboost"])
    assert bad.exit_code == 1 and "expected one of ['logistic_regression', 'random_forest']" in bad.output
    missing = runner.invoke(app, ["registry", "promote", "v-nope", "--registry", uri])
    assert missing.exit_code == 1 and "no model version 'v-nope'" in missing.output
    csv = tmp_path / "nolabel.csv"
    csv.write_text("a,b\n1,2\n")
    nolabel = runner.invoke(app, ["train", "--registry", uri, "--data", str(csv)])
    assert nolabel.exit_code == 1 and "expected a label column 'label'" in nolabel.output


def test_train_defaults_to_a_forest_a_user_would_deploy() -> None:
    import inspect

    from apps.inference.cli import train_command

    default = inspect.signature(train_command).parameters["samples"].default.default
    # 2,000 rows grew a forest 8x smaller than the 50,000 the API benchmark serves.
    assert default == 50_000
