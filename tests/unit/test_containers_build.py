"""Pure parts of the images harness: what an image's inputs are, and when its tag changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.waiting import WaitTimeoutError, wait_for
from harness.containers.base import BaseRecipe
from harness.containers.images import context_files, copy_sources, input_digest
from harness.containers.settings import LABEL_SESSION, settings_from_env


DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS deps
# COPY ignored/ /nowhere/
COPY pyproject.toml constraints.txt .wheelhous[e] /wheels/
RUN pip install -r /wheels/req.txt
FROM ${BASE_IMAGE}
COPY --from=deps /opt/app /opt/app
COPY --chown=10001:10001 apps/ /app/apps/
ADD ["environments", "/app/environments"]
COPY ./a.txt \\
     ./b.txt /app/
"""


def test_copy_sources_are_what_the_context_must_hold() -> None:
    assert copy_sources(DOCKERFILE) == ["pyproject.toml", "constraints.txt", ".wheelhous[e]", "apps/",
                                        "environments", "a.txt", "b.txt"]


def _tree(root: Path) -> None:
    for rel, text in {"apps/x.py": "x = 1\n", "apps/__pycache__/x.cpython-311.pyc": "junk",
                      "environments/base.yaml": "a: 1\n", "pyproject.toml": "[project]\n",
                      "constraints.txt": "", "tests/t.py": "", "a.txt": "a", "b.txt": "b"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_context_holds_named_files_without_caches(tmp_path: Path) -> None:
    _tree(tmp_path)
    files = [p.as_posix() for p in context_files(tmp_path, copy_sources(DOCKERFILE))]
    assert files == ["a.txt", "apps/x.py", "b.txt", "constraints.txt", "environments/base.yaml", "pyproject.toml"]


def test_tag_changes_exactly_when_an_input_changes(tmp_path: Path) -> None:
    _tree(tmp_path)
    files = context_files(tmp_path, copy_sources(DOCKERFILE))
    before = input_digest(tmp_path, files, extra=["base-id"])
    (tmp_path / "tests" / "t.py").write_text("not an input\n")
    assert input_digest(tmp_path, files, extra=["base-id"]) == before
    (tmp_path / "apps" / "x.py").write_text("x = 2\n")
    changed = input_digest(tmp_path, files, extra=["base-id"])
    assert changed != before
    assert input_digest(tmp_path, files, extra=["other-base-id"]) != changed


def test_base_recipe_tag_follows_content_not_mirror() -> None:
    recipe = BaseRecipe()
    assert recipe.tag() == BaseRecipe(mirror="http://mirror.example/debian").tag()
    assert recipe.tag() != BaseRecipe(packages=(*recipe.packages, "curl")).tag()
    assert recipe.tag().startswith("mlops-base:bookworm-py311-")


def test_wait_for_returns_the_first_truthy_value() -> None:
    seen = iter([None, False, "ready"])
    assert wait_for(lambda: next(seen), what="a value", timeout=5, interval=0.01) == "ready"


def test_wait_for_timeout_says_what_it_saw() -> None:
    def probe() -> None:
        raise ConnectionError("refused")

    with pytest.raises(WaitTimeoutError) as caught:
        wait_for(probe, what="the port", timeout=0.05, interval=0.01, transient=(ConnectionError,),
                 describe=lambda: "status=exited", hint="read the logs")
    text = str(caught.value)
    assert "the port" in text and "ConnectionError: refused" in text
    assert "status=exited" in text and "hint: read the logs" in text


def test_each_settings_object_is_its_own_session(tmp_path: Path) -> None:
    a = settings_from_env({"MLOPS_CACHE_DIR": str(tmp_path)})
    b = settings_from_env({"MLOPS_CACHE_DIR": str(tmp_path)})
    assert a.cache_dir == tmp_path
    assert a.labels()[LABEL_SESSION] != b.labels()[LABEL_SESSION]


def test_wheels_the_pool_already_holds_count_like_new_ones() -> None:
    """pip indents "File was already downloaded": a pin change whose wheels are all in the pool
    must still list them, or every offline image build fails on its first requirement."""
    from harness.containers.wheelhouse import _SAVED

    out = ("Collecting six\n  File was already downloaded /pool/six-1.17.0-py2.py3-none-any.whl\n"
           "Saved /pool/new-1.0-py3-none-any.whl\nSuccessfully downloaded six new\n")
    assert [m.group("path") for m in _SAVED.finditer(out)] == [
        "/pool/six-1.17.0-py2.py3-none-any.whl", "/pool/new-1.0-py3-none-any.whl"]
