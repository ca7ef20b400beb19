"""existing: any kubeconfig (a staging EKS cluster, for instance). Never created, never deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from environments.model import Environment
from harness.clusters.errors import ProviderUnavailableError
from harness.clusters.kube import client_for, serving
from harness.clusters.providers.base import ClusterInfo, ProviderName


def default_kubeconfig() -> Path:
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


class ExistingProvider:
    name: ProviderName = "existing"

    def __init__(self, *, kubeconfig: Path | None = None, context: str | None = None) -> None:
        self._kubeconfig = kubeconfig or default_kubeconfig()
        self.context = context

    def unavailable_reason(self) -> str | None:
        if not self._kubeconfig.is_file():
            return f"--mlops-cluster=existing needs a kubeconfig: {self._kubeconfig} does not exist (set --mlops-kubeconfig or KUBECONFIG)"
        return None

    def exists(self, cluster: str) -> bool:
        return self._kubeconfig.is_file() and serving(client_for(self._kubeconfig, context=self.context))

    def kubeconfig(self, cluster: str) -> Path:
        return self._kubeconfig

    def create(self, cluster: str, *, env: Environment) -> ClusterInfo:
        started = time.monotonic()
        if not self.exists(cluster):
            raise ProviderUnavailableError(f"the API server of {self._kubeconfig} (context {self.context or 'current'}) does not answer")
        return ClusterInfo(
            provider="existing", name=cluster, kubeconfig=self._kubeconfig, created=False, simulated=False,
            seconds=time.monotonic() - started,
        )

    def delete(self, cluster: str) -> None:
        """Never deletes: this provider did not create the cluster."""
