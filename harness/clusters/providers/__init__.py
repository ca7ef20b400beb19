"""Cluster providers behind one interface (`ClusterProvider`): kwok, kind, existing."""

from harness.clusters.providers.base import ClusterInfo, ClusterProvider, ProviderName
from harness.clusters.providers.existing import ExistingProvider
from harness.clusters.providers.kind import KindProvider
from harness.clusters.providers.kwok import KwokProvider

__all__ = ["ClusterInfo", "ClusterProvider", "ExistingProvider", "KindProvider", "KwokProvider", "ProviderName"]
