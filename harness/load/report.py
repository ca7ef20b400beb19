"""The short terminal summary of a gate run (rich): one row per endpoint, then the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from environments.model import LoadProfile
from harness.load.runner import GateReport


def _cell(value: float, limit: float | None, *, lower_is_better: bool = True) -> str:
    if limit is None:
        return f"{value:.1f}"
    ok = value <= limit if lower_is_better else value >= limit
    colour = "green" if ok else "bold red"
    return f"[{colour}]{value:.1f}[/] / {limit:g}"


def summary_table(report: GateReport, profile: LoadProfile) -> Table:
    result = report.result
    table = Table(
        title=f"perf gate · env {report.env} · profile {report.profile} · {report.target} {report.target_url}",
        caption=f"model {report.model_version} · machine {report.machine} · measured / allowed",
    )
    for column in ("endpoint", "requests", "failures", "p50 ms", "p95 ms", "p99 ms", "req/s"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for key in sorted(set(result.endpoints) | set(profile.endpoints)):
        measured = result.endpoints.get(key)
        limit = profile.endpoints.get(key)
        if measured is None:
            table.add_row(key, "[bold red]0[/]", "-", "-", "-", "-", "-")
            continue
        table.add_row(
            key,
            str(measured.requests),
            str(measured.failures),
            f"{measured.median_ms:.1f}",
            _cell(measured.p95_ms, limit.p95_ms if limit else None),
            _cell(measured.p99_ms, limit.p99_ms if limit else None),
            f"{measured.requests_per_s:.1f}",
        )
    ratio_ok = result.failure_ratio <= profile.failure_ratio
    table.add_section()
    table.add_row(
        "[bold]total[/]",
        str(result.requests),
        f"[{'green' if ratio_ok else 'bold red'}]{result.failures} ({result.failure_ratio:.2%})[/] / "
        f"{profile.failure_ratio:.2%}",
        "",
        "",
        "",
        _cell(result.requests_per_s, profile.min_rps, lower_is_better=False),
    )
    return table


def print_summary(report: GateReport, profile: LoadProfile, console: Console) -> None:
    console.print(summary_table(report, profile))
    verdict = report.verdict
    for note in verdict.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)
    if report.locust_exit_code and verdict.passed:
        console.print(
            f"[dim]locust's own exit code was {report.locust_exit_code} (any failure); the gate judges by the "
            "configured failure ratio instead[/]",
            highlight=False,
        )
    if verdict.passed:
        console.print(f"[bold green]PASS[/] {verdict.summary()}", highlight=False)
    else:
        console.print(f"[bold red]FAIL[/] {verdict.summary()}", highlight=False)
    a = report.artifacts
    console.print(f"[dim]artifacts:[/] {a.html} · {a.stats_csv} · {a.json_stats} · {a.gate}", highlight=False)
    if report.baseline_recorded:
        console.print(f"[bold]baseline recorded:[/] {report.baseline} (commit it to make it the reference)")
