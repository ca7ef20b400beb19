"""How a rendered workload's container runs, translated for Docker: the tree is the one source.

The Docker-only tests start the images the cluster runs, with what the rendered object says: the
command, the ConfigMap's and the container's environment, the user and group, the read-only
root, the dropped capabilities, no privilege escalation, the emptyDir mounts (as tmpfs of their
size limit) and the memory limit. A test adds only what differs in Docker (the harness's store,
a test registry, shorter leases). CPU limits are not applied: the load gates measure the
service on this machine's cores, not a quota.

    >>> shape = shape_for(["python", "-m", "apps.api"], image="ml-inference-api")
    >>> shape.ref, shape.create_kwargs()["user"], shape.tmpfs
    ('Deployment ml-inference/ml-inference-api', '10001:10001', {'/tmp': 'rw,nosuid,nodev,size=1073741824'})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from environments.quantities import memory_bytes
from argocd.render import RenderedObject, RenderedTree, render_environment
from environments import load_environment

WORKLOAD_KINDS = ("Deployment", "CronJob", "Job")


class WorkloadNotFound(LookupError):
    pass


@dataclass(frozen=True)
class WorkloadShape:
    ref: str  # the rendered object it comes from
    image: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    read_only: bool = False
    cap_drop: list[str] = field(default_factory=list)
    no_new_privileges: bool = False
    tmpfs: dict[str, str] = field(default_factory=dict)
    mem_limit: int | None = None

    def create_kwargs(self) -> dict[str, Any]:
        """docker create keyword arguments (besides image, command, environment and labels)."""
        kwargs: dict[str, Any] = {"read_only": self.read_only, "cap_drop": self.cap_drop,
                                  "security_opt": ["no-new-privileges:true"] if self.no_new_privileges else []}
        if self.user:
            kwargs["user"] = self.user
        if self.mem_limit:
            kwargs["mem_limit"] = self.mem_limit
        return kwargs


@lru_cache(maxsize=4)
def rendered(env_name: str = "local") -> RenderedTree:
    return render_environment(load_environment(env_name))


def shape_for(command: Sequence[str], *, image: str, env_name: str = "local") -> WorkloadShape | None:
    """`workload_shape` on the environment's rendered tree (rendered once per process); None for an
    image no workload runs (the harness's own base image, say)."""
    try:
        return workload_shape(rendered(env_name), command, image=image)
    except WorkloadNotFound:
        return None


def pod_spec(obj: RenderedObject) -> dict[str, Any]:
    spec = obj.manifest["spec"]
    if obj.kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def workload_shape(tree: RenderedTree, command: Sequence[str], *, image: str | None = None) -> WorkloadShape:
    """The shape of the workload of `tree` that runs `command` (its command and args are a prefix of
    it: `apps.batch run` covers `apps.batch run --partition D`); the one with replicas wins a tie.

    A command no workload runs (a reader, `train-sample`) gets the security of a workload of the
    same `image` (repository name) and none of its environment. WorkloadNotFound otherwise.
    """
    command = list(command)
    candidates = []
    for obj in tree.app_objects():
        if obj.kind not in WORKLOAD_KINDS:
            continue
        [container] = pod_spec(obj)["containers"]
        runs = [*container.get("command", []), *container.get("args", [])]
        repository = container["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
        if image is not None and repository != image:
            continue
        replicas = obj.manifest["spec"].get("replicas", 1)
        candidates.append((runs == command[: len(runs)] and bool(runs), replicas > 0, obj, container))
    if not candidates:
        raise WorkloadNotFound(f"no workload of {tree.env}'s tree runs {command} (image {image})")
    matched, _, obj, container = max(candidates, key=lambda c: (c[0], c[1]))
    if not matched and image is None:
        raise WorkloadNotFound(f"no workload of {tree.env}'s tree runs {' '.join(command)}; name its image")
    return _shape(tree, obj, container, command=command, environment=matched)


def _shape(tree: RenderedTree, obj: RenderedObject, container: dict[str, Any], *, command: list[str],
           environment: bool) -> WorkloadShape:
    pod = pod_spec(obj)
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    uid, gid = context.get("runAsUser"), context.get("runAsGroup")
    empty_dirs = {v["name"]: v["emptyDir"] for v in pod.get("volumes", []) if "emptyDir" in v}
    tmpfs = {m["mountPath"]: f"rw,nosuid,nodev,size={memory_bytes(empty_dirs[m['name']].get('sizeLimit', '64Mi'))}"
             for m in container.get("volumeMounts", []) if m["name"] in empty_dirs}
    limit = container.get("resources", {}).get("limits", {}).get("memory")
    return WorkloadShape(
        ref=obj.ref, image=container["image"], command=command,
        environment=_environment(tree, obj, container) if environment else {},
        user=f"{uid}:{gid}" if uid is not None and gid is not None else (str(uid) if uid is not None else None),
        read_only=bool(context.get("readOnlyRootFilesystem")),
        cap_drop=list(context.get("capabilities", {}).get("drop", [])),
        no_new_privileges=context.get("allowPrivilegeEscalation") is False,
        tmpfs=tmpfs, mem_limit=memory_bytes(limit) if limit else None,
    )


def _environment(tree: RenderedTree, obj: RenderedObject, container: dict[str, Any]) -> dict[str, str]:
    """envFrom ConfigMaps (in the object's namespace), then the container's own env, as Kubernetes orders them."""
    out: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        if name is None:
            continue
        [config_map] = [o for o in tree.app_objects()
                        if o.kind == "ConfigMap" and o.name == name and o.namespace == obj.namespace]
        out.update(config_map.manifest.get("data", {}))
    out.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return out
