"""Cluster providers behind one interface (`ClusterProvider`): kwok, kind, existing.

The one registry of provider names: the pytest option, `mlops harness cluster`, `mlops up` and
`mlops harness stack` all read it.

    provider = make_provider("kwok")                       # a ClusterProvider named "kwok"
    provider = make_provider("existing", kubeconfig=path)  # any cluster a kubeconfig reaches
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from harness.clusters.errors import UnknownProviderError
from harness.clusters.providers.base import ClusterInfo, ClusterProvider, ProviderName
from harness.clusters.providers.existing import ExistingProvider
from harness.clusters.providers.kind import KindProvider
from harness.clusters.providers.kwok import KwokProvider

PROVIDER_NAMES: tuple[ProviderName, ...] = get_args(ProviderName)
# Those that make their clusters on this machine (`mlops up`, the local stack); `existing` only connects.
LOCAL_PROVIDERS: tuple[ProviderName, ...] = ("kwok", "kind")


def make_provider(name: str, *, kubeconfig: Path | None = None, context: str | None = None) -> ClusterProvider:
    """The provider called `name`, with its defaults; `kubeconfig` and `context` are `existing`'s."""
    if name == "kwok":
        return KwokProvider()
    if name == "kind":
        return KindProvider()
    if name == "existing":
        return ExistingProvider(kubeconfig=kubeconfig, context=context)
    raise UnknownProviderError(name, expected=PROVIDER_NAMES)


__all__ = [
    "LOCAL_PROVIDERS",
    "PROVIDER_NAMES",
    "ClusterInfo",
    "ClusterProvider",
    "ExistingProvider",
    "KindProvider",
    "KwokProvider",
    "ProviderName",
    "make_provider",
]
