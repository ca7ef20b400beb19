"""Golden snapshots: the rendered tree of every environment, byte for byte.

A deliberate change is recorded with: UPDATE_GOLDEN=1 .venv/bin/pytest tests/manifests/test_golden.py
and reviewed in the diff of tests/manifests/golden/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from argocd.render import render_environment
from environments import load_environment
from tests.manifests.conftest import ENVS

pytestmark = pytest.mark.manifests
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ENVS)
def test_rendered_tree_matches_golden(name: str) -> None:
    tree = render_environment(load_environment(name))
    root = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        tree.write(root)
    on_disk = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}
    missing = sorted(set(tree) - set(on_disk))
    extra = sorted(set(on_disk) - set(tree))
    assert not missing and not extra, f"{name}: files not in golden {missing}, golden files no longer rendered {extra}"
    changed = [p for p in tree if tree[p] != on_disk[p]]
    assert not changed, f"{name}: rendered files differ from golden {changed}; rerun with UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("name", ENVS)
def test_rendering_twice_is_byte_identical(name: str) -> None:
    env = load_environment(name)
    assert dict(render_environment(env)) == dict(render_environment(env))
