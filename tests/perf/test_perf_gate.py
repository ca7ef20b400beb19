"""Real Locust runs against the real inference API: the gate passes a healthy API and fails a
slowed or failing one with a message naming each breached threshold, measured vs allowed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from environments.model import Environment, LoadProfileName
from harness.load.baseline import load_baseline
from harness.load.cli import app as load_app
from harness.load.runner import GateReport, run_gate
from harness.load.target import Faults, RunningApi

pytestmark = pytest.mark.perf

PROFILE: LoadProfileName = "mixed"


def _explain(report: GateReport, api_logs: str) -> str:
    return f"{report.verdict.summary()}\nnotes: {report.verdict.notes}\nAPI logs (tail):\n{api_logs}"


@pytest.fixture(scope="module")
def baseline_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Baselines of this module only: the repo's baselines are never rewritten by tests."""
    return tmp_path_factory.mktemp("baselines")


@pytest.fixture(scope="module")
def healthy_api(start_api) -> Iterator[RunningApi]:
    """One API without faults, shared by the tests that expect a healthy service."""
    with start_api(Faults()) as api:
        yield api


@pytest.fixture(scope="module")
def healthy_run(healthy_api: RunningApi, perf_env: Environment, baseline_root: Path, tmp_path_factory) -> GateReport:
    out = tmp_path_factory.mktemp("healthy")
    report = run_gate(env=perf_env, profile=PROFILE, target_url=healthy_api.url, out_dir=out, target="test",
                      machine="test-machine", baseline_root=baseline_root, record_baseline=True)
    assert report.passed, _explain(report, healthy_api.logs())
    return report


def test_healthy_api_passes_the_gate_and_writes_every_artifact(healthy_run: GateReport, perf_env: Environment) -> None:
    report = healthy_run
    assert report.result.failures == 0 and report.locust_exit_code == 0
    for key in perf_env.perf.profiles[PROFILE].endpoints:
        assert report.result.endpoints[key].requests > 0, f"{key} got no traffic"
    a = report.artifacts
    html = a.html.read_text()
    assert "<html" in html.lower() and "/v1/predict/batch" in html
    assert "POST,/v1/predict," in a.stats_csv.read_text()
    assert {e["name"] for e in json.loads(a.json_stats.read_text())} >= {"/v1/predict", "/v1/predict/batch", "/v1/model"}
    gate = json.loads(a.gate.read_text())
    assert gate["passed"] is True and gate["breaches"] == [] and gate["model_version"] == report.model_version
    assert report.baseline_recorded and load_baseline(report.baseline) is not None


def test_a_single_transient_failure_does_not_fail_the_gate(
    healthy_api: RunningApi, perf_env: Environment, artifacts_dir: Path
) -> None:
    report = run_gate(env=perf_env, profile="single", target_url=healthy_api.url, out_dir=artifacts_dir,
                      compare_baseline=False, malformed_requests=1)
    # Locust alone fails this run (exit 1 on any failure); the gate applies the allowed ratio.
    assert report.locust_exit_code == 1
    assert report.result.failures == 1, _explain(report, healthy_api.logs())
    assert report.passed, _explain(report, healthy_api.logs())
    assert any(n.startswith(f"1 of {report.result.requests} requests failed") for n in report.verdict.notes)


def test_a_run_stops_at_the_request_cap_before_its_duration(
    healthy_api: RunningApi, perf_env: Environment, artifacts_dir: Path
) -> None:
    cap, duration_s = 300, 120
    env = perf_env.model_copy(update={"perf": perf_env.perf.model_copy(update={"profiles": {
        "single": perf_env.perf.profiles["single"].model_copy(update={"max_requests": cap, "duration_s": duration_s})
    }})})
    started = time.monotonic()
    report = run_gate(env=env, profile="single", target_url=healthy_api.url, out_dir=artifacts_dir,
                      compare_baseline=False)
    elapsed = time.monotonic() - started
    # Users in flight when the cap is reached finish their request: at most one more each.
    assert cap <= report.result.requests <= cap + env.perf.profiles["single"].users, report.result
    assert elapsed < duration_s / 2, f"the run took {elapsed:.0f}s: the request cap did not stop it"
    assert any("request cap" in n for n in report.verdict.notes)


def test_injected_latency_fails_every_latency_threshold_and_the_baseline(
    start_api, perf_env: Environment, baseline_root: Path, healthy_run: GateReport, artifacts_dir: Path
) -> None:
    profile = perf_env.perf.profiles[PROFILE]
    latency_ms = 2 * max(t.p95_ms for t in profile.endpoints.values())
    with start_api(Faults(latency_ms=latency_ms)) as api:
        report = run_gate(env=perf_env, profile=PROFILE, target_url=api.url, out_dir=artifacts_dir, target="test",
                          machine="test-machine", baseline_root=baseline_root)
        logs = api.logs()
    assert not report.passed
    messages = [b.message for b in report.verdict.breaches]
    # The API injects its faults on the prediction routes; reading the model stays fast.
    slowed = {key: t for key, t in profile.endpoints.items() if key.startswith("POST /v1/predict")}
    assert slowed, "the mixed profile should gate the prediction routes"
    for key, t in slowed.items():
        for metric, allowed in (("p95", t.p95_ms), ("p99", t.p99_ms)):
            if allowed >= latency_ms:
                continue
            pattern = rf"^{re.escape(key)} {metric}: measured (\d+\.\d) ms, allowed {allowed:.1f} ms$"
            found = [m for m in messages if re.match(pattern, m)]
            assert found, f"no breach named for {key} {metric}:\n{_explain(report, logs)}"
            measured = re.match(pattern, found[0])
            assert measured is not None and float(measured.group(1)) >= latency_ms
    # No user sends faster than one request per injected latency: throughput falls below the minimum too.
    assert any(m.startswith("requests/s: measured") for m in messages), messages
    # And the slowdown is flagged against the healthy run's baseline for this machine profile.
    regressions = [b for b in report.verdict.breaches if b.kind == "regression"]
    assert report.baseline_compared and {b.threshold for b in regressions} >= {
        f"{k} p95 vs baseline" for k in slowed
    } | {"requests/s vs baseline"}
    assert all("baseline test-machine/local/mixed" in b.detail for b in regressions)


def test_injected_errors_fail_the_gate_from_the_command_line(
    start_api, perf_env: Environment, artifacts_dir: Path
) -> None:
    profile = perf_env.perf.profiles[PROFILE]
    error_ratio = 0.2
    with start_api(Faults(error_ratio=error_ratio)) as api:
        result = CliRunner().invoke(load_app, [
            "run", "--env", "local", "-p", PROFILE, "--target", "url", "--url", api.url, "--no-baseline",
            "--duration", str(profile.duration_s), "--out", str(artifacts_dir),
        ])  # fmt: skip
        logs = api.logs()
    output = result.output
    assert result.exit_code == 1, f"{output}\nAPI logs:\n{logs}"
    match = re.search(r"failure ratio: measured (\d+\.\d\d)%, allowed 1\.00%", output)
    assert match, output
    assert 10 <= float(match.group(1)) <= 30, output
    assert f"perf gate failed for profile(s) {PROFILE}" in output
    gate = json.loads((artifacts_dir / PROFILE / "gate.json").read_text())
    assert gate["passed"] is False and any(b.startswith("failure ratio") for b in gate["breaches"])
