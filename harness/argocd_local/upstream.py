"""Argo CD's own manifests, read from the Go module the toolchain builds it from: its CRDs and
its base configuration (config maps and the secret), at exactly the pinned version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from apps.addons.upstream import UpstreamError, module_dir
from harness.argocd_local.errors import UpstreamManifestError
from harness.toolchain.manifest import load_manifest

GROUP = "argocd"
TOOL = "argocd"


def source_dir() -> Path:
    """The pinned module's source in the Go module cache (downloaded, checksum-verified, if absent)."""
    group = load_manifest().groups[GROUP]
    try:
        return module_dir(group.module, group.version)
    except UpstreamError as e:
        raise UpstreamManifestError(str(e)) from None


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        # libyaml's loader when present: the CRDs are megabytes of YAML
        return [d for d in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]
    except (OSError, yaml.YAMLError) as e:
        raise UpstreamManifestError(f"{path}: {e}") from e


# Helper scripts Argo CD's image puts on PATH (its Dockerfile copies them to /usr/local/bin):
# the repo-server runs git-verify-wrapper.sh on every revision it generates manifests for.
HELPER_SCRIPTS = ("git-verify-wrapper.sh", "gpg-wrapper.sh")


def install_helpers(bin_dir: Path) -> Path:
    """Copy the image's helper scripts from the pinned module into `bin_dir`, executable."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in HELPER_SCRIPTS:
        source = source_dir() / "hack" / name
        if not source.is_file():
            raise UpstreamManifestError(f"{source} is missing: Argo CD's image needs it on PATH; is the module's layout still hack/{name}?")
        target = bin_dir / name
        target.write_bytes(source.read_bytes())
        target.chmod(0o755)  # the module cache is read-only, never executable
    return bin_dir


def crds() -> list[dict[str, Any]]:
    """Application, AppProject and ApplicationSet CRDs (manifests/crds)."""
    folder = source_dir() / "manifests" / "crds"
    found = [d for p in sorted(folder.glob("*-crd.yaml")) for d in _documents(p)]
    if not found:
        raise UpstreamManifestError(f"no *-crd.yaml under {folder}: is the module's layout still manifests/crds?")
    return found


def base_config(*, namespace: str, overrides: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """argocd-cm, -rbac-cm, -cmd-params-cm, -secret... (manifests/base/config) in `namespace`;
    `overrides` adds data keys per object name (argocd-cm settings, for instance)."""
    folder = source_dir() / "manifests" / "base" / "config"
    docs = [d for p in sorted(folder.glob("argocd-*.yaml")) for d in _documents(p)]
    if not docs:
        raise UpstreamManifestError(f"no argocd-*.yaml under {folder}: is the module's layout still manifests/base/config?")
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        extra = (overrides or {}).get(doc["metadata"]["name"])
        if extra:
            key = "stringData" if doc["kind"] == "Secret" else "data"
            doc[key] = {**(doc.get(key) or {}), **extra}
    return docs


# Sign-in goes through the cluster's own credentials (the cloud chart's values disable Dex too).
WITHOUT = "argocd-dex-server"
CLUSTER_SCOPED = frozenset({"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"})


def install(*, namespace: str, images: dict[str, str], settings: dict[str, str]) -> list[dict[str, Any]]:
    """Argo CD's cluster install (manifests/install.yaml) at the pinned version, to run as pods:
    namespaced objects in `namespace`, Dex left out, each container's image replaced by
    `images[<upstream repository's last part>]` ("argocd", "redis") and used when present (the
    nodes hold it), argocd-cm extended with `settings`."""
    docs = [d for d in _documents(source_dir() / "manifests" / "install.yaml")
            if not d["metadata"]["name"].startswith(WITHOUT)]  # its account, role, Service, policy...
    if not any(d["kind"] == "StatefulSet" for d in docs):
        raise UpstreamManifestError("manifests/install.yaml has no application controller: is the module's layout still the same?")
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            if "namespace" in subject:
                subject["namespace"] = namespace
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "argocd-cm":
            doc["data"] = {**(doc.get("data") or {}), **settings}
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        for container in (pod or {}).get("containers", []) + (pod or {}).get("initContainers", []):
            repository = container["image"].split(":", 1)[0].rsplit("/", 1)[-1]
            if repository not in images:
                raise UpstreamManifestError(f"{doc['kind']} {doc['metadata']['name']} runs {container['image']}, "
                                            f"which has no local build (have: {sorted(images)})")
            container["image"] = images[repository]
            container["imagePullPolicy"] = "IfNotPresent"
    return docs
