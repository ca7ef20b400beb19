"""Policy checks the schemas cannot express: the project's security and reliability rules.

Pod Security Standards "restricted", requests and limits on every container, probes on
long-running containers, pinned images (no ``:latest``), nothing privileged, no host paths,
host namespaces or host ports, no plaintext secrets, and GPU workloads that tolerate the GPU
taint. Each finding names env, app, object and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from argocd.findings import Finding
from environments.model import GPU_TAINT, Environment

GPU_RESOURCE = "nvidia.com/gpu"
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY|API_KEY|CREDENTIAL)", re.IGNORECASE)
# Names that point at a secret (a file, a URL) rather than hold one.
REFERENCE_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_URI", "_URL", "_NAME")
ALLOWED_CAPABILITIES = {"NET_BIND_SERVICE"}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}


class _Checker:
    def __init__(self, env: Environment, obj: Any) -> None:
        self.env, self.obj = env, obj
        self.findings: list[Finding] = []

    def add(self, field: str, message: str) -> None:
        self.findings.append(
            Finding(
                env=self.env.name,
                app=self.obj.app,
                object=self.obj.ref,
                path=self.obj.path,
                field=field,
                check="policy",
                message=message,
            )
        )


def check_policy(env: Environment, tree: Any) -> list[Finding]:
    """Every policy finding of a ``RenderedTree`` (synced objects and templates alike)."""
    findings: list[Finding] = []
    for obj in tree.objects:
        checker = _Checker(env, obj)
        _check_object(checker, obj.manifest)
        findings += checker.findings
    return findings


def _check_object(c: _Checker, manifest: dict[str, Any]) -> None:
    kind = manifest.get("kind")
    if kind == "Namespace":
        labels = manifest.get("metadata", {}).get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            c.add(
                "metadata.labels.pod-security.kubernetes.io/enforce",
                f"expected 'restricted', got {labels.get('pod-security.kubernetes.io/enforce')!r}",
            )
    if kind == "Secret" and (manifest.get("data") or manifest.get("stringData")):
        c.add("data", "a Secret with values is a plaintext secret in git; reference an existing Secret instead")
    if kind == "ConfigMap":
        for key, value in (manifest.get("data") or {}).items():
            if _secret_like(key) and value:
                c.add(f"data.{key}", "looks like a secret value in a ConfigMap; use a Secret reference")
    if kind in POD_SPEC_PATHS:
        spec: Any = manifest
        for part in POD_SPEC_PATHS[kind]:
            spec = spec.get(part, {}) if isinstance(spec, dict) else {}
        _check_pod(c, spec, ".".join(POD_SPEC_PATHS[kind]), long_running=kind in LONG_RUNNING)


def _containers(spec: dict[str, Any], at: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            yield f"{at}.{group}[{i}]", container, group == "containers"


def _check_pod(c: _Checker, spec: dict[str, Any], at: str, *, long_running: bool) -> None:
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            c.add(f"{at}.{flag}", "host namespaces are forbidden (restricted)")
    for i, volume in enumerate(spec.get("volumes") or []):
        if "hostPath" in volume:
            c.add(f"{at}.volumes[{i}].hostPath", "hostPath volumes are forbidden; use a PVC or emptyDir")
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        c.add(f"{at}.securityContext.runAsUser", "runs as root (uid 0)")
    uses_gpu = False
    for where, container, main in _containers(spec, at):
        sc = container.get("securityContext") or {}
        _check_image(c, where, container.get("image", ""))
        if sc.get("privileged"):
            c.add(f"{where}.securityContext.privileged", "privileged containers are forbidden")
        if sc.get("allowPrivilegeEscalation") is not False:
            c.add(f"{where}.securityContext.allowPrivilegeEscalation", "must be false (restricted)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            c.add(f"{where}.securityContext.capabilities.drop", "must drop ALL (restricted)")
        added = set(caps.get("add") or []) - ALLOWED_CAPABILITIES
        if added:
            c.add(f"{where}.securityContext.capabilities.add", f"may add only NET_BIND_SERVICE, got {sorted(added)}")
        if sc.get("readOnlyRootFilesystem") is not True:
            c.add(f"{where}.securityContext.readOnlyRootFilesystem", "must be true; write to /tmp or a volume")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            c.add(f"{where}.securityContext.runAsNonRoot", "must be true at pod or container level (restricted)")
        if sc.get("runAsUser") == 0:
            c.add(f"{where}.securityContext.runAsUser", "runs as root (uid 0)")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in SECCOMP_OK:
            c.add(
                f"{where}.securityContext.seccompProfile.type", f"expected RuntimeDefault or Localhost, got {seccomp!r}"
            )
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            for name in ("cpu", "memory"):
                if name not in (resources.get(bound) or {}):
                    c.add(f"{where}.resources.{bound}.{name}", f"missing: every container sets {bound} for {name}")
        if GPU_RESOURCE in (resources.get("limits") or {}):
            uses_gpu = True
        for j, port in enumerate(container.get("ports") or []):
            if port.get("hostPort"):
                c.add(f"{where}.ports[{j}].hostPort", "host ports are forbidden")
        for j, var in enumerate(container.get("env") or []):
            if _secret_like(var.get("name", "")) and "value" in var:
                c.add(f"{where}.env[{j}].value", f"{var['name']} is set in plain text; use valueFrom.secretKeyRef")
        if long_running and main:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    c.add(f"{where}.{probe}", "missing: long-running containers need liveness and readiness probes")
    if uses_gpu:
        tolerated = any(
            t.get("key") == GPU_TAINT.key
            and t.get("effect") in (GPU_TAINT.effect, None)
            and (t.get("operator") == "Exists" or t.get("value") == GPU_TAINT.value)
            for t in spec.get("tolerations") or []
        )
        if not tolerated:
            c.add(
                f"{at}.tolerations",
                f"requests {GPU_RESOURCE} but does not tolerate the GPU taint "
                f"{GPU_TAINT.key}={GPU_TAINT.value}:{GPU_TAINT.effect}",
            )
        if not spec.get("nodeSelector") and not spec.get("affinity", {}).get("nodeAffinity"):
            c.add(f"{at}.nodeSelector", f"requests {GPU_RESOURCE} but selects no GPU node")


def _secret_like(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not name.upper().endswith(REFERENCE_SUFFIXES)


def _check_image(c: _Checker, where: str, image: str) -> None:
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return
    if ":" not in last:
        c.add(f"{where}.image", f"{image!r} has no tag; pin a tag or digest")
    elif last.endswith(":latest"):
        c.add(f"{where}.image", f"{image!r} uses :latest; pin a tag or digest")
