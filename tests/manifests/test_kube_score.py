"""kube-score over the rendered trees: no critical or warning finding the project has not justified.

The second linter next to checkov, built from its Go module into the tool cache like every
pinned tool. A justified exclusion sits on the object itself: `kube-score/ignore` names the
tests and `mlops-toolkit.io/kube-score-ignore-why` says why (apps/k8s/meta.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from apps.k8s import KUBE_SCORE_IGNORE, KUBE_SCORE_WHY
from argocd.render import RenderedTree
from argocd.validate import kubernetes_version
from environments import load_environment
from harness.toolchain import ensure_tool
from tests.manifests.conftest import ENVS

pytestmark = pytest.mark.manifests


@pytest.mark.parametrize("name", ENVS)
def test_kube_score_finds_nothing_unjustified(name: str, tmp_path: Path, trees: dict[str, RenderedTree]) -> None:
    tree = trees[name]
    tree.write(tmp_path)
    files = sorted(str(tmp_path / o.path) for o in tree.app_objects())
    version = kubernetes_version(load_environment(name))
    result = subprocess.run([str(ensure_tool("kube-score")), "score", "--kubernetes-version", f"v{version}",
                             "--output-format", "json", *files], capture_output=True, text=True, timeout=300, check=False)
    assert result.stdout, result.stderr
    findings = [
        f"{o['object_name']} ({o['type_meta']['kind']}): {c['check']['id']}: "
        + "; ".join(comment["summary"] for comment in c.get("comments") or [])
        for o in json.loads(result.stdout)
        for c in o["checks"]
        if not c["skipped"] and c["grade"] < 10  # 1 critical, 5 warning
    ]
    assert findings == [], "\n".join(findings)
    for obj in tree.app_objects():
        annotations = obj.manifest["metadata"].get("annotations") or {}
        if KUBE_SCORE_IGNORE in annotations:  # every exclusion carries its reason
            ignored = annotations[KUBE_SCORE_IGNORE].split(",")
            assert [r.split(":", 1)[0] for r in annotations[KUBE_SCORE_WHY].splitlines()] == ignored, obj.ref
