"""The short terminal summary of a gate run (rich): one row per threshold, measured vs allowed."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from environments.model import LoadProfile
from harness.load.runner import GateReport

OK = "[green]ok[/]"
BREACHED = "[bold red]FAIL[/]"


def summary_table(report: GateReport, profile: LoadProfile) -> Table:
    result = report.result
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"perf gate · {report.env}/{report.profile} · {report.target} {report.target_url}",
        caption=f"{result.requests} requests, {result.failures} failed · model {report.model_version} · "
        f"machine {report.machine}",
    )
    table.add_column("check", no_wrap=True)
    table.add_column("requests", justify="right")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("allowed", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    breached = {b.threshold for b in report.verdict.breaches}
    for key, limit in profile.endpoints.items():
        measured = result.endpoints.get(key)
        if measured is None or not measured.requests:
            table.add_row(f"{key}", "0", "-", "> 0 requests", BREACHED)
            continue
        for metric, value, allowed in (("p95", measured.p95_ms, limit.p95_ms), ("p99", measured.p99_ms, limit.p99_ms)):
            name = f"{key} {metric}"
            table.add_row(name, str(measured.requests) if metric == "p95" else "", f"{value:.0f} ms",
                          f"≤ {allowed:g} ms", BREACHED if name in breached else OK)
    table.add_row("failure ratio", str(result.requests), f"{result.failure_ratio:.2%}", f"≤ {profile.failure_ratio:.2%}",
                  BREACHED if "failure ratio" in breached else OK)
    table.add_row("requests/s", "", f"{result.requests_per_s:.1f}", f"≥ {profile.min_rps:g}",
                  BREACHED if "requests/s" in breached else OK)
    for b in report.verdict.breaches:
        if b.kind == "regression":
            table.add_row(b.threshold, "", f"{b.measured:.1f} {b.unit}", f"{b.allowed:.1f} {b.unit}", BREACHED)
    if report.baseline_compared and not any(b.kind == "regression" for b in report.verdict.breaches):
        table.add_row("vs baseline", "", "", "", OK)
    return table


def print_summary(report: GateReport, profile: LoadProfile, console: Console) -> None:
    console.print(summary_table(report, profile))
    verdict = report.verdict
    for note in verdict.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)
    if report.locust_exit_code and verdict.passed:
        console.print(
            f"[dim]note: locust's own exit code was {report.locust_exit_code} (it fails on any failure); the gate "
            "judges by the configured failure ratio instead[/]",
            highlight=False,
        )
    if verdict.passed:
        console.print(f"[bold green]PASS[/] {verdict.summary()}", highlight=False)
    else:
        console.print(f"[bold red]FAIL[/] {verdict.summary()}", highlight=False)
    console.print(f"[dim]report:[/] {report.artifacts.html}", highlight=False)
    console.print(f"[dim]data:[/] {report.artifacts.gate} · {report.artifacts.stats_csv} · {report.artifacts.json_stats}",
                  highlight=False)
    if report.baseline_recorded:
        console.print(f"[bold]baseline recorded:[/] {report.baseline} (commit it to make it the reference)")
