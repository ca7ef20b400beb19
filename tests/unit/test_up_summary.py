"""`mlops up`'s steps end as typed StepResults; only the presenter turns them into a coloured table."""

from __future__ import annotations

import pytest
from rich.console import Console

from harness.clusters.errors import ClusterError
from harness.up import StepFailed, StepResult, step, summary_table



def test_steps_record_typed_results_and_a_failure_names_its_step() -> None:
    summary: list[StepResult] = []
    with step(summary, "tools") as out:
        out[0] = "3 pinned tools [main]"
    with pytest.raises(StepFailed, match="^kwok cluster: no kwokctl$"), step(summary, "kwok cluster"):
        raise ClusterError("no kwokctl")
    assert [(r.name, r.ok, r.detail) for r in summary] == [("tools", True, "3 pinned tools [main]"),
                                                          ("kwok cluster", False, "no kwokctl")]
    assert all(isinstance(r.seconds, float) and r.seconds >= 0 for r in summary)


def test_the_presenter_alone_adds_markup_and_prints_details_as_text() -> None:
    results = [StepResult("tools", ok=True, detail="3 pinned tools [main]", seconds=1.25),
               StepResult("images", ok=False, detail="no engine", seconds=0.5)]
    console = Console(record=True, width=120, color_system="truecolor")
    console.print(summary_table(results, title="mlops up local"))
    text, styled = console.export_text(clear=False), console.export_text(styles=True)
    assert "ok 3 pinned tools [main]" in text and "1.2s" in text and "failed no engine" in text
    assert "[green]" not in text and "\x1b[32m" in styled  # green, as the terminal shows it
