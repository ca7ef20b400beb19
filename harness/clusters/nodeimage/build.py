"""kind's node image, assembled offline: a bookworm rootfs, binaries from the toolchain, and every
image kubeadm and the cluster's add-ons run, imported into the node's containerd.

`kind build node-image` fetches images from registries, so it cannot run here. Instead:

1. debootstrap a bookworm rootfs with what a node needs (systemd 252 still boots on cgroup v1
   hosts; trixie's 257 refuses them) and `docker import` it as the node base;
2. build the cluster's images on the local engine, tagged as `kubeadm config images list` says
   (scratch images for static binaries; kube-proxy and the storage helper on the node base);
3. build the node's filesystem (binaries, units, containerd config, kind's manifests);
4. run it with containerd alone, `ctr images import` the images (namespace k8s.io, pinned),
   and commit the result with systemd as the entrypoint's command.

The tag holds a digest of every input, so a changed binary, file or image rebuilds it and an
unchanged one is found in seconds.

    >>> ensure_node_image(client, settings=settings, log=print)          # doctest: +SKIP
    'mlops-kind-node:v1.33.13-3f2a9c41d07e'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from harness.containers.base import _nice, _run, _unmount_under, image_exists
from harness.containers.errors import ImageBuildError
from harness.containers.images import build_from_files, prune_older
from harness.containers.objectstore import file_digest
from harness.containers.platform import LOCAL_REGISTRY, ensure_platform_images
from harness.containers.settings import LABEL_BUILT_BY, OWNER, ContainersSettings
from harness.toolchain import ensure_tools, load_manifest

FILES = Path(__file__).parent / "files"
NODE_REPOSITORY = "mlops-kind-node"
BASE_REPOSITORY = "mlops-kind-base"
PINNED = "io.cri-containerd.pinned=pinned"
Log = Callable[[str], None]

# What a kind node runs besides the binaries: systemd, the netfilter tools kube-proxy and the
# CNI plugins call, mount/kmod/procps for the kubelet, socat for port-forward.
NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "iptables", "nftables", "iproute2", "conntrack", "ethtool", "mount",
    "util-linux", "kmod", "libseccomp2", "procps", "ca-certificates", "socat", "bash", "findutils",
)
BASE_CHANGES = ("ENV container=docker", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                f"LABEL {LABEL_BUILT_BY}={OWNER}")

# node path -> toolchain tool
NODE_BINARIES = {
    "/usr/bin/kubelet": "kubelet", "/usr/bin/kubeadm": "kubeadm", "/usr/bin/kubectl": "kubectl",
    "/usr/local/bin/containerd": "containerd", "/usr/local/bin/ctr": "ctr",
    "/usr/local/bin/containerd-shim-runc-v2": "containerd-shim-runc-v2", "/usr/local/sbin/runc": "runc",
    "/usr/local/bin/crictl": "crictl",
    **{f"/opt/cni/bin/{p}": p for p in ("ptp", "bridge", "loopback", "host-local", "portmap")},
}
# node path -> file of ours (FILES)
NODE_FILES = {
    "/usr/local/bin/entrypoint": "entrypoint",
    "/etc/systemd/system/containerd.service": "containerd.service",
    "/etc/systemd/system/kubelet.service": "kubelet.service",
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf": "10-kubeadm.conf",
    "/etc/containerd/config.toml": "containerd.toml",
    "/etc/crictl.yaml": "crictl.yaml",
    "/kind/manifests/default-storage.yaml": "default-storage.yaml",
}


@dataclass(frozen=True)
class ClusterImage:
    """One image the node holds: its reference, and a tool binary on scratch or the node base."""

    ref: str
    tool: str | None  # None: the node base alone (a shell for the storage helper)
    path: str = ""
    entrypoint: tuple[str, ...] = ()
    on_base: bool = False


def _text(output: bytes | Iterator[bytes]) -> str:
    """exec_run's output as text: bytes, or chunks when streamed."""
    return (output if isinstance(output, bytes) else b"".join(output)).decode()


def cluster_images(k8s_version: str) -> list[ClusterImage]:
    """Every image the node needs, tagged as kubeadm `k8s_version` and our manifests expect."""
    group = load_manifest().groups
    local_path = group["local-path-provisioner"].version
    k8s = "registry.k8s.io"
    return [
        *(ClusterImage(f"{k8s}/{c}:{k8s_version}", c, f"/usr/local/bin/{c}")
          for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")),
        ClusterImage(f"{k8s}/kube-proxy:{k8s_version}", "kube-proxy", "/usr/local/bin/kube-proxy", on_base=True),
        ClusterImage(f"{k8s}/etcd:{group['node-etcd'].version.removeprefix('v')}-0", "node-etcd", "/usr/local/bin/etcd"),
        ClusterImage(f"{k8s}/coredns/coredns:{group['coredns'].version}", "coredns", "/coredns", ("/coredns",)),
        ClusterImage(f"{k8s}/pause:3.10", "pause", "/pause", ("/pause",)),
        ClusterImage(f"{LOCAL_REGISTRY}/local-path-provisioner:{local_path}", "local-path-provisioner",
                     "/usr/local/bin/local-path-provisioner"),
        ClusterImage(f"{LOCAL_REGISTRY}/local-path-helper:{local_path}", None, on_base=True),
        ClusterImage(f"{LOCAL_REGISTRY}/kube-network-policies:{group['kube-network-policies'].version}",
                     "kube-network-policies", "/bin/netpol", ("/bin/netpol",)),
        # The local environment's metrics-server add-on (environments/local.yaml names this image).
        ClusterImage(f"{LOCAL_REGISTRY}/metrics-server:{group['metrics-server'].version}", "metrics-server",
                     "/metrics-server", ("/metrics-server",)),
    ]


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def ensure_node_base(client: docker.DockerClient, *, settings: ContainersSettings, log: Log) -> str:
    """The node's rootfs as an image (debootstrap once; the tarball is cached for re-imports)."""
    digest = _digest("bookworm", "minbase", *NODE_PACKAGES)
    tag = f"{BASE_REPOSITORY}:bookworm-{_digest(digest, *BASE_CHANGES)}"
    if image_exists(client, tag):
        return tag
    tarball = settings.cache_dir / "kind" / f"node-rootfs-{digest}.tar"
    if not tarball.exists():
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as tmp:
            root = Path(tmp) / "rootfs"
            try:
                _run(_nice(settings) + [debootstrap, "--variant=minbase", f"--include={','.join(NODE_PACKAGES)}",
                                        "bookworm", str(root), "http://deb.debian.org/debian"],
                     what="debootstrap the kind node rootfs", log=log)
                for junk in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man"):
                    shutil.rmtree(root / junk, ignore_errors=True)
                partial = tarball.with_suffix(".partial")
                _run(["tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                      "-C", str(root), "-cf", str(partial), "."], what="pack the node rootfs", log=log)
                partial.replace(tarball)
            finally:
                _unmount_under(root)
    log(f"importing {tarball.name} as {tag}")
    repository, version = tag.split(":", 1)
    client.api.import_image_from_file(str(tarball), repository=repository, tag=version, changes=list(BASE_CHANGES))
    return tag


def _pause_binary(k8s_version: str, out: Path, *, log: Log) -> Path:
    """pause, compiled statically from build/pause/linux/pause.c of the pinned Kubernetes module."""
    if out.is_file():
        return out
    from harness.toolchain.manifest import module_dir

    proc = subprocess.run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{k8s_version}"],
                          cwd=module_dir("kubernetes"), capture_output=True, text=True, check=False,
                          env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"})
    source = Path(json.loads(proc.stdout or "{}").get("Dir", "/nonexistent")) / "build/pause/linux/pause.c"
    if not source.is_file():
        raise ImageBuildError(f"pause: no {source} in k8s.io/kubernetes@{k8s_version}: {proc.stderr[-500:]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(["gcc", "-Os", "-static", "-o", str(out.with_suffix(".partial")), str(source),
          f"-DVERSION={k8s_version}"], what="compile pause", log=log)
    out.with_suffix(".partial").replace(out)
    return out


def ensure_cluster_images(client: docker.DockerClient, *, base: str, k8s_version: str,
                          tools: dict[str, Path], log: Log) -> dict[str, str]:
    """Build each cluster image that is missing; returns ref -> image id."""
    base_id = str(client.images.get(base).id)
    ids: dict[str, str] = {}
    for image in cluster_images(k8s_version):
        source = tools.get(image.tool) if image.tool else None
        digest = _digest(image.ref, image.path, *image.entrypoint, str(image.on_base),
                         file_digest(source) if source else "", base_id if image.on_base else "")
        local = f"{NODE_REPOSITORY}-parts:{digest}"
        if not image_exists(client, local):
            lines = [f"FROM {base}" if image.on_base else "FROM scratch",
                     "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
            files: dict[str, Path] = {}
            if source and image.tool:
                lines.append(f"COPY {image.tool} {image.path}")
                files[image.tool] = source
            if image.entrypoint:
                lines.append(f"ENTRYPOINT {json.dumps(list(image.entrypoint))}")
            if image.on_base:
                lines.append('ENTRYPOINT []')
            build_from_files(client, local, "\n".join(lines) + "\n", files, log=log)
        built = client.images.get(local)
        built.tag(image.ref)
        ids[image.ref] = str(built.id)
    return ids


# Bumped when the assembly itself changes (2: the image carries no session labels).
NODE_IMAGE_FORMAT = 2


def node_image_tag(k8s_version: str, *, base_id: str, tools: dict[str, Path], image_ids: dict[str, str]) -> str:
    """The node image's tag: the Kubernetes version and a digest of every input."""
    parts = [f"format={NODE_IMAGE_FORMAT}", base_id, *(f"{p}={file_digest(tools[t])}" for p, t in sorted(NODE_BINARIES.items())),
             *(f"{p}={file_digest(FILES / f)}" for p, f in sorted(NODE_FILES.items())),
             *(f"{r}={i}" for r, i in sorted(image_ids.items()))]
    return f"{NODE_REPOSITORY}:{k8s_version}-{_digest(*parts)}"


def ensure_node_image(client: docker.DockerClient, *, settings: ContainersSettings, log: Log = lambda _: None) -> str:
    """The kind node image for the toolchain's Kubernetes version, built when any input changed."""
    started = time.monotonic()
    k8s_version = load_manifest().groups["kubernetes"].version
    needed = {*NODE_BINARIES.values(), *(i.tool for i in cluster_images(k8s_version) if i.tool and i.tool != "pause")}
    tools = dict(ensure_tools(sorted(needed)))
    tools["pause"] = _pause_binary(k8s_version, settings.cache_dir / "kind" / f"pause-{k8s_version}" / "pause", log=log)
    base = ensure_node_base(client, settings=settings, log=log)
    image_ids = ensure_cluster_images(client, base=base, k8s_version=k8s_version, tools=tools, log=log)
    # Argo CD and its Redis run in the cluster as pods: the nodes hold them, pinned.
    image_ids |= ensure_platform_images(client, settings=settings, log=log)
    tag = node_image_tag(k8s_version, base_id=str(client.images.get(base).id), tools=tools, image_ids=image_ids)
    if image_exists(client, tag):
        return tag
    log(f"assembling {tag}")
    stage = f"{NODE_REPOSITORY}-stage:{tag.split(':', 1)[1]}"
    files = {Path(p).name + f".{i}": tools[t] for i, (p, t) in enumerate(NODE_BINARIES.items())}
    copies = [f"COPY {Path(p).name}.{i} {p}" for i, p in enumerate(NODE_BINARIES)]
    for i, (path, name) in enumerate(NODE_FILES.items()):
        files[f"file.{i}"] = FILES / name
        copies.append(f"COPY file.{i} {path}")
    dockerfile = "\n".join([
        # systemd stops on SIGRTMIN+3 (a `docker import` cannot set it).
        f"FROM {base}", "STOPSIGNAL SIGRTMIN+3", *copies,
        f"RUN chmod 0755 /usr/local/bin/entrypoint && echo {k8s_version} > /kind/version "
        "&& systemctl enable containerd kubelet >/dev/null 2>&1 "
        "&& mkdir -p /etc/cni/net.d /var/lib/kubelet /etc/kubernetes/manifests /kind/images",
    ]) + "\n"
    build_from_files(client, stage, dockerfile, files, log=log)
    _import_images(client, stage=stage, tag=tag, refs=sorted(image_ids), settings=settings, log=log)
    client.images.remove(stage, noprune=False)
    prune_older(client, NODE_REPOSITORY, keep=tag)  # 1.2 GB each: older builds must not pile up
    log(f"{tag} ready in {time.monotonic() - started:.0f}s")
    return tag


def _import_images(client: docker.DockerClient, *, stage: str, tag: str, refs: list[str],
                   settings: ContainersSettings, log: Log) -> None:
    """Run the stage with containerd alone, import the cluster images pinned, commit as `tag`."""
    with tempfile.TemporaryDirectory(dir=settings.cache_dir, prefix="kind-images-") as tmp:
        log(f"saving {len(refs)} cluster images")
        archives = []
        for i, ref in enumerate(refs):
            archives.append(f"/kind/images/{i}.tar")
            with (Path(tmp) / f"{i}.tar").open("wb") as out:
                # Saved by reference, so the archive names the image as the cluster expects it.
                for chunk in client.api.get_image(ref):
                    out.write(chunk)
        # No session labels: the commit below inherits them, and kind's nodes would then look like
        # the containers of a dead session to the next session's stale sweep (and be removed).
        container = client.containers.run(stage, entrypoint=["/usr/local/bin/containerd"], detach=True,
                                          volumes={tmp: {"bind": "/kind/images", "mode": "ro"}},
                                          labels={LABEL_BUILT_BY: OWNER, "io.mlops-toolkit.role": "kind-node-build"})
        try:
            _wait_containerd(container)
            for archive in archives:
                code, output = container.exec_run(["ctr", "--namespace=k8s.io", "images", "import", "--no-unpack",
                                                   "--all-platforms", f"--label={PINNED}", archive])
                if code != 0:
                    raise ImageBuildError(f"ctr images import of {archive} in {stage} failed ({code}): "
                                          f"{_text(output)[-2000:]}")
            code, listed = container.exec_run(["ctr", "--namespace=k8s.io", "images", "list", "--quiet"])
            missing = [r for r in refs if r not in _text(listed).split()]
            if missing:
                raise ImageBuildError(f"the node's containerd lacks {missing} after the import")
            container.stop(timeout=30)
            repository, version = tag.split(":", 1)
            container.commit(repository=repository, tag=version, changes=[
                'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', "CMD []",
            ])
        finally:
            container.remove(force=True)


def _wait_containerd(container: object) -> None:
    from apps.waiting import wait_for

    def answering() -> bool:
        code, _ = container.exec_run(["ctr", "version"])  # type: ignore[attr-defined]
        return code == 0

    wait_for(answering, what="containerd in the node image build", timeout=60, interval=0.5,
             describe=lambda: container.logs(tail=30).decode(errors="replace"))  # type: ignore[attr-defined]
