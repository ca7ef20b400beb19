"""Each model family has its own registry: a promotion in one never reaches another's readers."""

from __future__ import annotations

import pytest


from environments import environment_names, load_environment
from tests.manifests.conftest import render

pytestmark = pytest.mark.manifests


@pytest.mark.parametrize("name", environment_names())
def test_pipelines_never_share_an_active_model(name: str) -> None:
    env = load_environment(name)
    registries: dict[str, set[str]] = {}
    for obj in render(env).app_objects():
        if obj.kind == "ConfigMap" and "MODEL_REGISTRY_URI" in obj.manifest.get("data", {}):
            registries.setdefault(obj.app, set()).add(obj.manifest["data"]["MODEL_REGISTRY_URI"])
    # Seed 001's API has its own family: what fraud model-build promotes never reaches it.
    assert registries["inference-api"] == {env.model_registry_uri("inference")}
    assert registries["fraud-pipeline"] == {env.model_registry_uri("fraud")}
    assert registries["batch-pipeline"] == {env.model_registry_uri("pcc")}
    # The bootstrap writes each family's first model where that family's readers look, nowhere else.
    assert registries["model-bootstrap"] == {env.model_registry_uri(f) for f in ("inference", "fraud", "pcc")}
    assert len({env.model_registry_uri(f) for f in ("inference", "fraud", "pcc")}) == 3
