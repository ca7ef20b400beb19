"""infra/kube_api.py: the one place that decides a Kubernetes answer means "not found"."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import Status
from lightkube.resources.core_v1 import ConfigMap, Namespace

from infra.kube_api import delete_if_present, found, get_or_none, not_found



def api_error(code: int) -> ApiError:
    return ApiError(status=Status(code=code, message=f"HTTP {code}"))


class FakeClient:
    """Answers every call with `answer`: an error to raise or an object to return."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any]] = []

    def _reply(self, call: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((call, (args, kwargs)))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._reply("get", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._reply("delete", *args, **kwargs)


def test_only_a_404_means_not_found() -> None:
    request = httpx2.Request("GET", "https://api/apis/argoproj.io/v1alpha1")
    group_not_served = httpx2.HTTPStatusError("404", request=request, response=httpx2.Response(404, request=request))
    assert not_found(api_error(404)) and not_found(group_not_served)
    assert not any(not_found(e) for e in (api_error(403), api_error(409), ValueError("404")))


def test_a_read_returns_none_for_404_and_raises_anything_else() -> None:
    live = ConfigMap(data={"a": "1"})
    assert get_or_none(FakeClient(live), ConfigMap, "c", namespace="ns") is live  # type: ignore[arg-type]
    assert get_or_none(FakeClient(api_error(404)), ConfigMap, "c", namespace="ns") is None  # type: ignore[arg-type]
    assert found(FakeClient(live), Namespace, "ns") and not found(FakeClient(api_error(404)), Namespace, "ns")  # type: ignore[arg-type]
    with pytest.raises(ApiError):
        found(FakeClient(api_error(403)), Namespace, "ns")  # type: ignore[arg-type]


def test_deleting_what_is_gone_is_done_and_other_refusals_raise() -> None:
    client = FakeClient(None)
    assert delete_if_present(client, ConfigMap, "c", namespace="ns", grace_period=0)  # type: ignore[arg-type]
    assert client.calls == [("delete", ((ConfigMap, "c"), {"namespace": "ns", "grace_period": 0}))]
    assert delete_if_present(FakeClient(api_error(404)), Namespace, "ns") is False  # type: ignore[arg-type]
    with pytest.raises(ApiError):
        delete_if_present(FakeClient(api_error(500)), Namespace, "ns")  # type: ignore[arg-type]
