"""Golden snapshots: the rendered tree of every environment, byte for byte.

A deliberate change is recorded with: UPDATE_GOLDEN=1 .venv/bin/pytest tests/manifests/test_golden.py
and reviewed in the diff of tests/manifests/golden/.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from argocd.render import RenderedTree
from environments import load_environment
from tests.manifests.conftest import ENVS, render

pytestmark = pytest.mark.manifests
GOLDEN = Path(__file__).parent / "golden"


def snapshot(tree: RenderedTree) -> dict[str, bytes]:
    """The tree, with upstream CRDs (rendered from their pinned module) recorded by digest:
    a change of version shows, and no upstream text is copied into this repository."""
    out = {}
    for obj in tree.objects:
        data = tree[obj.path]
        if obj.kind == "CustomResourceDefinition":
            data = f"# {obj.ref}: upstream, sha256:{hashlib.sha256(data).hexdigest()}\n".encode()
        out[obj.path] = data
    return out


@pytest.mark.parametrize("name", ENVS)
def test_rendered_tree_matches_golden(name: str) -> None:
    tree = snapshot(render(load_environment(name)))
    root = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        for old in root.rglob("*.yaml"):
            old.unlink()
        for path, data in tree.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    on_disk = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}
    missing = sorted(set(tree) - set(on_disk))
    extra = sorted(set(on_disk) - set(tree))
    assert not missing and not extra, f"{name}: files not in golden {missing}, golden files no longer rendered {extra}"
    changed = [p for p in tree if tree[p] != on_disk[p]]
    assert not changed, f"{name}: rendered files differ from golden {changed}; rerun with UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("name", ENVS)
def test_rendering_twice_is_byte_identical(name: str) -> None:
    env = load_environment(name)
    assert dict(render(env)) == dict(render(env))
