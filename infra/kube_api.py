"""What a Kubernetes API answer means, decided in one place: "not found" (HTTP 404) is an
answer, not an error, for a read or a delete; every other refusal is raised as it came.

It lives in `infra/` because both rooms that talk to a cluster may import it: infra's
Kubernetes objects (the local stack) and the harness; it needs lightkube, not pulumi.

    >>> not_found(ValueError("x"))
    False
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx2
from lightkube import ApiError, Client
from lightkube.core.resource import Resource

R = TypeVar("R", bound=Resource)


def not_found(error: BaseException) -> bool:
    """An API error meaning "no such object", or "no such group" (lightkube raises httpx2's
    status error for a group the server does not serve, a CRD's until it is Established)."""
    if isinstance(error, ApiError):
        return error.status.code == 404
    if isinstance(error, httpx2.HTTPStatusError):
        return error.response.status_code == 404
    return False


def get_or_none(client: Client, kind: type[R], name: str, *, namespace: str | None = None) -> R | None:
    """The live object, or None when the API server has none; any other refusal is raised."""
    try:
        # lightkube's overloads split global from namespaced kinds; either is served here.
        live: R = client.get(kind, name, namespace=namespace)  # type: ignore[type-var]
    except ApiError as e:
        if not_found(e):
            return None
        raise
    return live


def found(client: Client, kind: type[Resource], name: str, namespace: str | None = None) -> bool:
    """Whether the API server has the object; any answer but 404 is an error."""
    return get_or_none(client, kind, name, namespace=namespace) is not None


def delete_if_present(client: Client, kind: type[Resource], name: str, *, namespace: str | None = None,
                      **options: Any) -> bool:
    """Delete the object; False when it was already gone (gone counts as done)."""
    try:
        client.delete(kind, name, namespace=namespace, **options)  # type: ignore[type-var]
    except ApiError as e:
        if not_found(e):
            return False
        raise
    return True
