"""infra/kubernetes_object.py's waits (a CRD's kind not served yet, a deletion held by finalizers)
go through the one wait_for, and end as a KubernetesObjectError naming the object."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta, Status
from lightkube.resources.core_v1 import ConfigMap

from infra import kubernetes_object
from infra.errors import KubernetesObjectError

MANIFEST = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}


def api_error(code: int) -> ApiError:
    return ApiError(status=Status(code=code, message=f"HTTP {code}"))


class Scripted:
    """A client whose apply and get answer from a script (an error is raised)."""

    def __init__(self, *, applies: Sequence[Any] = (), gets: Sequence[Any] = ()) -> None:
        self.applies, self.gets, self.deleted = list(applies), list(gets), 0

    def _next(self, script: list[Any]) -> Any:
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def apply(self, *_: Any, **__: Any) -> Any:
        return self._next(self.applies)

    def get(self, *_: Any, **__: Any) -> Any:
        return self._next(self.gets)

    def delete(self, *_: Any, **__: Any) -> None:
        self.deleted += 1


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Scripted]:
    fake = Scripted()
    monkeypatch.setitem(kubernetes_object._CLIENTS, "kc", fake)
    monkeypatch.setattr(kubernetes_object, "_resource_type", lambda *_: ConfigMap)
    yield fake


def test_apply_retries_while_the_kind_is_not_served(client: Scripted) -> None:
    client.applies = [api_error(404), api_error(404), ConfigMap(metadata=ObjectMeta(name="c", uid="u1"))]
    assert kubernetes_object.apply("kc", MANIFEST)["metadata"]["uid"] == "u1"


def test_apply_refused_is_not_retried_and_a_404_that_lasts_times_out(client: Scripted,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client.applies = [api_error(422)]
    with pytest.raises(KubernetesObjectError, match=r"ConfigMap ns/c: apply refused \(HTTP 422\)"):
        kubernetes_object.apply("kc", MANIFEST)
    monkeypatch.setattr(kubernetes_object, "CRD_SERVING_TIMEOUT_S", 0.0)
    client.applies = [api_error(404)]
    with pytest.raises(KubernetesObjectError, match=r"ConfigMap ns/c: apply refused \(HTTP 404\)"):
        kubernetes_object.apply("kc", MANIFEST)


def test_delete_waits_until_gone_and_names_the_finalizers_that_hold_it(client: Scripted) -> None:
    held = ConfigMap(metadata=ObjectMeta(name="c", finalizers=["example.com/hold"]))
    client.gets = [held, api_error(404)]
    kubernetes_object.delete("kc", MANIFEST, timeout=5)
    assert client.deleted == 1
    client.gets = [held]
    with pytest.raises(KubernetesObjectError, match=r"still exists 0s after its deletion; finalizers \['example.com/hold'\]"):
        kubernetes_object.delete("kc", MANIFEST, timeout=0)
