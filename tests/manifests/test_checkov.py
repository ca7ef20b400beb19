"""checkov over the rendered trees: no failed check that the project has not justified.

checkov is not a project dependency (it pins half of PyPI): harness/setup.sh installs it into its
own venv and links it beside this interpreter; MLOPS_CHECKOV or PATH can name another one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from argocd.render import RenderedTree
from tests.manifests.conftest import ENVS

pytestmark = pytest.mark.manifests
# The checks we fail on purpose, each with its reason in a checkov.io/skip annotation.
JUSTIFIED = {"CKV_K8S_15", "CKV_K8S_43"}


def _checkov() -> str | None:
    beside = Path(sys.executable).with_name("checkov")
    return os.environ.get("MLOPS_CHECKOV") or (str(beside) if beside.exists() else shutil.which("checkov"))


@pytest.mark.skipif(_checkov() is None, reason="checkov not installed (harness/setup.sh installs it; or set MLOPS_CHECKOV, or put it on PATH)")
def test_checkov_finds_nothing_unjustified(tmp_path: Path, trees: dict[str, RenderedTree]) -> None:
    for name in ENVS:
        trees[name].write(tmp_path / name)
    checkov = _checkov()
    assert checkov is not None  # the skipif above
    result = subprocess.run(
        [checkov, "-d", str(tmp_path), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"],
        # No guideline download: this machine (and CI) reaches package registries only.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{f['check_id']} {f['resource']} ({f['file_path']})"
        for r in reports
        for f in r["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    skipped = [r2 for r in reports for r2 in r["results"].get("skipped_checks", [])]
    assert {s["check_id"] for s in skipped} <= JUSTIFIED
    assert all(s["check_result"].get("suppress_comment") for s in skipped), "every skip carries its reason"
