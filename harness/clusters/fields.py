"""Fields of objects read back from the API server.

lightkube's models type every field optional (they also describe objects being built); an object
the server returns always has its name, and a Service its spec. These say so once, and fail with
what was missing instead of an AttributeError on None.
"""

from __future__ import annotations

from typing import Protocol

from lightkube.models.core_v1 import ServicePort
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Service


class _Stored(Protocol):
    @property
    def metadata(self) -> ObjectMeta | None: ...


def name_of(obj: _Stored) -> str:
    """metadata.name of an object read from the API server."""
    if obj.metadata is None or obj.metadata.name is None:
        raise ValueError(f"{type(obj).__name__} from the API server has no metadata.name")
    return obj.metadata.name


def labels_of(obj: _Stored) -> dict[str, str]:
    """metadata.labels of an object read from the API server (none: an empty dict)."""
    return dict(obj.metadata.labels or {}) if obj.metadata else {}


def service_ports(service: Service) -> list[ServicePort]:
    """spec.ports of a Service read from the API server (none: an empty list)."""
    return list(service.spec.ports or []) if service.spec else []
