"""Run one profile headless with Locust in a subprocess and judge it: `run_gate`.

    >>> report = run_gate(env=load_environment("local"), profile="single",
    ...                   target_url="http://127.0.0.1:5000", out_dir=Path(".artifacts/load/single"))
    >>> report.verdict.passed

Locust runs as a real process (its gevent monkey-patching stays out of ours), bounded three
ways: the profile's load shape ends at `duration_s`, the locustfile stops at `max_requests`,
and a process timeout catches anything else (Locust ignores `--run-time` when a shape runs).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from environments.model import Environment, LoadProfileName
from harness.load.baseline import Baseline, baseline_from, baseline_path, load_baseline, machine_profile, write_baseline
from harness.load.errors import LoadRunError, TargetError
from harness.load.gate import Verdict, evaluate
from harness.load.locustfiles import locustfile
from harness.load.plan import PLAN_ENV, LoadPlan
from harness.load.results import RunResult, read_stats_json
from harness.load.schema import fetch_schema

# Past the shape's own end: time for Locust to start, stop users and write its reports.
GRACE_S = 30


class RunArtifacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    out_dir: Path
    plan: Path
    html: Path
    stats_csv: Path
    json_stats: Path
    log: Path
    gate: Path


class GateReport(BaseModel):
    """Everything a run decided, as written to `gate.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str
    profile: str
    target_url: str
    target: str
    machine: str
    model_version: str
    locust_exit_code: int
    result: RunResult
    verdict: Verdict
    baseline: Path
    baseline_compared: bool
    baseline_recorded: bool
    artifacts: RunArtifacts

    @property
    def passed(self) -> bool:
        return self.verdict.passed


def check_target(url: str, *, allow_remote: bool = False) -> str:
    """Loopback targets only, unless the caller says otherwise (staging URLs, on purpose)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"target {url!r}: expected http(s)://host[:port]")
    host = parts.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise TargetError(
            f"target {url!r} is not on this machine (127.0.0.1/localhost); pass --allow-remote to load a "
            "cluster you own, such as staging"
        )
    return url.rstrip("/")


def run_locust(*, plan: LoadPlan, target_url: str, out_dir: Path) -> tuple[int, RunArtifacts]:
    """Run Locust for `plan` against `target_url`; returns its exit code and the artifact paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = RunArtifacts(
        out_dir=out_dir,
        plan=plan.write(out_dir / "plan.json"),
        html=out_dir / "report.html",
        stats_csv=out_dir / "locust_stats.csv",
        json_stats=out_dir / "locust.json",
        log=out_dir / "locust.log",
        gate=out_dir / "gate.json",
    )
    timeout_s = int(plan.duration_s) + 2 * GRACE_S
    argv = [
        sys.executable, "-m", "locust",
        "-f", str(locustfile(plan.profile)),
        "--headless", "--only-summary",
        "--host", target_url,
        "--csv", str(out_dir / "locust"),
        "--html", str(artifacts.html),
        "--json-file", str(out_dir / "locust"),
        "--logfile", str(artifacts.log),
    ]  # fmt: skip
    # Locust reads LOCUST_* variables as options: only the plan configures this run.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")} | {PLAN_ENV: str(artifacts.plan)}
    with (out_dir / "locust.out").open("wb") as out:
        try:
            proc = subprocess.run(argv, env=child_env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise LoadRunError(
                f"locust did not finish within {timeout_s}s against {target_url}; "
                f"last log lines:\n{_tail(artifacts.log)}"
            ) from None
    if proc.returncode not in (0, 1) or not artifacts.json_stats.is_file():
        raise LoadRunError(
            f"locust exited {proc.returncode} without a complete run against {target_url} "
            f"(expected 0 or 1 with {artifacts.json_stats.name}); output:\n{_tail(out_dir / 'locust.out')}\n"
            f"log:\n{_tail(artifacts.log)}"
        )
    return proc.returncode, artifacts


def run_gate(
    *,
    env: Environment,
    profile: LoadProfileName,
    target_url: str,
    out_dir: Path,
    target: str = "url",
    allow_remote: bool = False,
    machine: str | None = None,
    baseline_root: Path | None = None,
    compare_baseline: bool = True,
    record_baseline: bool = False,
    malformed_requests: int = 0,
) -> GateReport:
    """Run `profile` of `env.perf` against `target_url`, judge it, write `gate.json`."""
    if profile not in env.perf.profiles:
        raise LoadRunError(f"environment {env.name!r} has no perf profile {profile!r}; it has {sorted(env.perf.profiles)}")
    url = check_target(target_url, allow_remote=allow_remote)
    settings = env.perf.profiles[profile]
    schema = fetch_schema(url)
    plan = LoadPlan.build(profile_name=profile, profile=settings, schema=schema, batch_size=settings.batch_size,
                          malformed_requests=malformed_requests)
    exit_code, artifacts = run_locust(plan=plan, target_url=url, out_dir=out_dir)
    result = read_stats_json(artifacts.json_stats)

    machine_name = machine_profile(machine)
    path = baseline_path(machine=machine_name, env=env.name, profile=profile,
                         **({"root": baseline_root} if baseline_root else {}))
    baseline: Baseline | None = load_baseline(path) if compare_baseline else None
    verdict = evaluate(profile_name=profile, profile=settings, result=result, baseline=baseline,
                       regression_ratio=env.perf.regression_ratio, regression_floor_ms=env.perf.regression_floor_ms)
    if compare_baseline and baseline is None:
        verdict = verdict.model_copy(update={"notes": [*verdict.notes, f"no baseline at {path}: nothing to compare"]})
    recorded = False
    # A baseline records a good run: one that breached a threshold is never written.
    if record_baseline and not [b for b in verdict.breaches if b.kind != "regression"]:
        write_baseline(baseline_from(result, machine=machine_name, env=env.name, profile=profile, target=target), path)
        recorded = True
    elif record_baseline:
        verdict = verdict.model_copy(update={"notes": [*verdict.notes, "baseline not recorded: the run breached "
                                                       "its thresholds"]})
    report = GateReport(
        env=env.name, profile=profile, target_url=url, target=target, machine=machine_name,
        model_version=schema.model_version, locust_exit_code=exit_code, result=result, verdict=verdict,
        baseline=path, baseline_compared=baseline is not None, baseline_recorded=recorded, artifacts=artifacts,
    )  # fmt: skip
    artifacts.gate.write_text(_gate_json(report), encoding="utf-8")
    return report


def _gate_json(report: GateReport) -> str:
    data = report.model_dump(mode="json")
    data["passed"] = report.passed
    data["breaches"] = [b.message for b in report.verdict.breaches]
    return json.dumps(data, indent=2) + "\n"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"
