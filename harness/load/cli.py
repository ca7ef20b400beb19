"""`mlops harness load`: run the perf gates of an environment against the API, manage baselines."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import docker.errors
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from apps.cli_errors import fail, one_line_errors
from apps.waiting import WaitTimeoutError
from environments import EnvironmentFileError, load_environment
from environments.model import Environment, LoadProfileName
from harness.containers.errors import ContainersError
from harness.load.baseline import BASELINE_DIR, baseline_path, load_baseline, machine_profile
from harness.load.errors import LoadError
from harness.load.report import print_summary
from harness.load.runner import run_gate
from harness.load.target import Faults, api_process, local_registry

app = typer.Typer(no_args_is_help=True, help="Load gates: Locust runs judged by env.perf, baselines per machine.")
console = Console()


class Target(str, Enum):
    process = "process"
    container = "container"
    url = "url"


def _environment(name: str, *, duration: int | None, users: int | None) -> Environment:
    overrides: dict[str, Any] = {}
    if duration is not None or users is not None:
        base = load_environment(name)
        knobs = {k: v for k, v in (("duration_s", duration), ("users", users)) if v is not None}
        overrides = {"perf": {"profiles": {p: knobs for p in base.perf.profiles}}}
    return load_environment(name, overrides=overrides or None)


@contextlib.contextmanager
def _target(kind: Target, *, env: Environment, url: str | None, faults: Faults, work: Path) -> Iterator[str]:
    if kind is Target.url:
        if not url:
            fail("--target url needs --url http(s)://host:port")
        if faults.any:
            fail("fault injection is set on the API when it starts; with --target url it cannot be applied")
        yield url
        return
    if kind is Target.container:
        from harness.load.target import api_in_container

        with api_in_container(env=env, faults=faults) as container_url:
            yield container_url
        return
    registry_uri = local_registry(work / "models", env=env)
    with api_process(env=env, registry_uri=registry_uri, faults=faults, log_path=work / "api.log") as process_url:
        yield process_url


@app.command("run")
def run(
    env_name: str = typer.Option("local", "--env", help="Environment whose env.perf thresholds apply."),
    profiles: list[str] = typer.Option(None, "--profile", "-p", help="Profiles to run (repeatable); all when omitted."),
    target: Target = typer.Option(Target.container, help="container: the API image via the harness; process: "
                                  "python -m apps.api locally; url: an already running API (--url)."),
    url: str = typer.Option(None, help="Base URL of a running API (with --target url)."),
    allow_remote: bool = typer.Option(False, help="Allow a target that is not on 127.0.0.1 (a staging cluster)."),
    out: Path = typer.Option(None, help="Artifacts folder; default .artifacts/load/<env>-<time>."),
    machine: str = typer.Option(None, help="Machine profile for baselines; default $MLOPS_MACHINE_PROFILE or detected."),
    record_baseline: bool = typer.Option(False, "--record-baseline", help="Write this run as the baseline (commit it)."),
    compare_baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Compare with the recorded baseline."),
    duration: int = typer.Option(None, help="Override duration_s of every profile (seconds)."),
    users: int = typer.Option(None, help="Override users of every profile."),
    fault_latency_ms: float = typer.Option(0.0, help="Test-only: start the API with this added latency."),
    fault_error_ratio: float = typer.Option(0.0, help="Test-only: start the API failing this ratio of requests."),
) -> None:
    """Run Locust headless per profile and judge each run; exit 1 when any gate fails."""
    with one_line_errors(EnvironmentFileError, LoadError, ContainersError, WaitTimeoutError,
                         docker.errors.DockerException):
        env = _environment(env_name, duration=duration, users=users)
        names: list[LoadProfileName] = list(profiles or env.perf.profiles)  # type: ignore[arg-type]
        unknown = [p for p in names if p not in env.perf.profiles]
        if unknown:
            fail(f"unknown profile(s) {unknown}; env {env.name!r} has {sorted(env.perf.profiles)}")
        faults = Faults(latency_ms=fault_latency_ms, error_ratio=fault_error_ratio)
        out_dir = out or Path(".artifacts/load") / f"{env.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        failed: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mlops-load-") as tmp, _target(
            target, env=env, url=url, faults=faults, work=Path(tmp)
        ) as base_url:
            for name in names:
                report = run_gate(
                    env=env, profile=name, target_url=base_url, out_dir=out_dir / name, target=target.value,
                    allow_remote=allow_remote, machine=machine, compare_baseline=compare_baseline,
                    record_baseline=record_baseline,
                )  # fmt: skip
                print_summary(report, env.perf.profiles[name], console)
                if not report.passed:
                    failed.append(name)
    if failed:
        fail(f"perf gate failed for profile(s) {', '.join(failed)}: see the breaches above and {out_dir}")


@app.command("baselines")
def baselines(
    env_name: str = typer.Option("local", "--env"),
    machine: str = typer.Option(None, help="Machine profile; default $MLOPS_MACHINE_PROFILE or detected."),
) -> None:
    """The recorded baselines for this machine profile (and which profiles lack one)."""
    with one_line_errors(EnvironmentFileError, LoadError):
        env = load_environment(env_name)
        name = machine_profile(machine)
        table = Table("profile", "recorded", "target", "req/s", "p95 per endpoint (ms)", box=box.SIMPLE_HEAD,
                      title=f"baselines · {name}")
        for profile in env.perf.profiles:
            path = baseline_path(machine=name, env=env.name, profile=profile)
            b = load_baseline(path)
            if b is None:
                table.add_row(profile, "[yellow]none[/]", "", "", f"record: mlops harness load run -p {profile} "
                              "--record-baseline")
                continue
            p95 = ", ".join(f"{k} {e.p95_ms:g}" for k, e in b.endpoints.items())
            table.add_row(profile, f"{b.recorded_at:%Y-%m-%d %H:%M}", b.target, f"{b.requests_per_s:.1f}", p95)
        console.print(table)
        console.print(f"[dim]{BASELINE_DIR}/{name}[/]", highlight=False)


@app.command("thresholds")
def thresholds(env_name: str = typer.Option("local", "--env")) -> None:
    """The gates env.perf sets, per profile and endpoint."""
    with one_line_errors(EnvironmentFileError):
        env = load_environment(env_name)
    table = Table(box=box.SIMPLE_HEAD, title=f"perf gates · env {env.name} · regression {env.perf.regression_ratio}x")
    table.add_column("profile")
    table.add_column("load and limits")
    table.add_column("endpoint", no_wrap=True)
    table.add_column("p95 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    for name, p in env.perf.profiles.items():
        pace = f" × {p.user_rps:g}/s" if p.user_rps else " (closed loop)"
        load = f"{p.users} users{pace} · {p.duration_s} s\n≤ {p.max_requests} requests\n≥ {p.min_rps:g} req/s\n" \
               f"≤ {p.failure_ratio:.1%} failed"
        for i, (key, t) in enumerate(p.endpoints.items()):
            table.add_row(name if i == 0 else "", load if i == 0 else "", key, f"{t.p95_ms:g}", f"{t.p99_ms:g}")
        table.add_section()
    console.print(table)


if __name__ == "__main__":
    app()
