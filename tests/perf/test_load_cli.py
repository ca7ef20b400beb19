"""`mlops harness load` without a target: thresholds, baselines, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from environments import load_environment
from harness.load.cli import app

pytestmark = pytest.mark.unit


def test_thresholds_show_every_gate_of_the_environment() -> None:
    result = CliRunner().invoke(app, ["thresholds", "--env", "prod"], terminal_width=200)
    assert result.exit_code == 0, result.output
    prod = load_environment("prod").perf
    for name, profile in prod.profiles.items():
        assert name in result.output
        for key in profile.endpoints:
            assert key in result.output
    assert f"regression {prod.regression_ratio}x" in result.output


def test_baselines_say_which_profiles_lack_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["baselines", "--machine", "nowhere-0cpu"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert result.output.count("none") == len(load_environment("local").perf.profiles)
    assert "--record-baseline" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-p", "soak", "--target", "url", "--url", "http://127.0.0.1:9"], "unknown profile(s) ['soak']"),
        (["run", "-p", "single", "--target", "url"], "--target url needs --url"),
        (["run", "-p", "single", "--target", "url", "--url", "http://10.1.2.3:5000"], "--allow-remote"),
        (["run", "-p", "single", "--target", "url", "--url", "http://127.0.0.1:9"], "GET http://127.0.0.1:9/v1/model"),
        (["run", "--env", "prod", "--target", "process", "--fault-latency-ms", "50"], "does not allow fault injection"),
    ],
)
def test_run_refuses_with_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.strip().startswith("error:")
