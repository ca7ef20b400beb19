"""`pulumi up | preview | destroy` of a local stack, for real: the toolchain's Pulumi CLI, a
file backend, and the project's own program (`infra.platform.deploy`) on a local cluster.

The program runs through Pulumi's Automation API: its in-process language runtime stands in
for the Python language host, whose Go module is not served to this project's machines
(harness/toolchain/manifest.yaml). The CLI, the engine, the state, the diffs and the dynamic
providers are Pulumi's own.

    site = LocalSite.of(load_environment("local"))   # state: <cache root>/stacks/mlops-local
    run("up", lambda: site.stack(kubeconfig).up(refresh=True))

The passphrase that guards the stack's secrets comes from PULUMI_CONFIG_PASSPHRASE; without
it, one is generated once into the state directory (mode 0600) and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pulumi import automation as auto

from argocd.publish import local_path
from environments import Environment
from environments.loader import with_overrides
from harness.argocd_local import upstream

# git's own port (on 127.0.0.1 for host processes): a stable clone URL keeps a rerun a no-op
from harness.argocd_local.gitserver import GIT_PORT, git_server_name
from harness.ports import LOOPBACK
from harness.config import cache_root
from harness.containers import registry
from harness.containers.build import REPO_ROOT
from harness.containers.platform import REDIS_IMAGE, argocd_image
from harness.toolchain import ensure_tool
from infra.gitops import argocd_settings
from infra.local import CONFIG, LocalTarget
from infra.platform import IMAGE_DIGESTS, PROJECT, deploy

PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"
T = TypeVar("T")


def stacks_dir() -> Path:
    """Where local stacks keep their state: `stacks/` under the harness's cache root (harness.config)."""
    return cache_root() / "stacks"


@dataclass(frozen=True)
class LocalSite:
    """Where a local environment's stack keeps its state, where its tree is published, and the
    URL Argo CD clones it from: `git daemon` in front of the bare repository, on 127.0.0.1 for
    Argo CD as host processes (kwok), in a container on the cluster's network for Argo CD as
    pods (`in_cluster`, kind)."""

    env: Environment
    cluster: str
    state: Path
    repo: Path
    git_port: int
    in_cluster: bool = False

    @classmethod
    def of(cls, env: Environment, *, cluster: str | None = None, state: Path | None = None,
           git_port: int = GIT_PORT, in_cluster: bool = False) -> LocalSite:
        """`state` defaults to stacks_dir()."""
        name = cluster or f"mlops-{env.name}"
        return cls(env, name, (state or stacks_dir()).expanduser() / name, local_path(env.gitops.repo_url), git_port, in_cluster)

    @property
    def git_host(self) -> str:
        return git_server_name(self.cluster) if self.in_cluster else LOOPBACK

    @property
    def clone_url(self) -> str:
        port = GIT_PORT if self.in_cluster else self.git_port
        return f"git://{self.git_host}:{port}/{self.repo.name}"

    @property
    def images_file(self) -> Path:
        """The images the last `mlops up` pushed (registry and digests): what the stack deploys."""
        return self.state / "images.json"

    def record_images(self, env: Environment) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        pushed = {"registry": env.images.registry, "digests": env.images.digests}
        self.images_file.write_text(json.dumps(pushed, indent=2, sort_keys=True) + "\n")

    def deployed(self) -> Environment:
        """The site's environment with the images its last `mlops up` pushed (if any)."""
        if not self.images_file.is_file():
            return self.env
        return with_overrides(self.env, {"images": json.loads(self.images_file.read_text())})

    def stack(self, kubeconfig: Path, *, env: Environment | None = None) -> auto.Stack:
        """The stack, its Argo CD manifests written afresh from the pinned module; its program
        deploys `env` (default: the site's, with the images last pushed)."""
        manifests = write_argocd_manifests(self.state / "argocd-manifests.yaml", env=self.env,
                                           in_cluster=self.in_cluster)
        return local_stack(env or self.deployed(), state=self.state, kubeconfig=kubeconfig,
                           argocd_manifests=manifests, clone_url=self.clone_url)


class StackError(RuntimeError):
    """A `pulumi` operation of the local stack failed; the message is Pulumi's own diagnostics."""


def diagnostics(output: str) -> str:
    """The "Diagnostics:" section of Pulumi's output (what failed and why), else its last lines."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Diagnostics:")), None)
    if start is None:
        return "\n".join(lines[-20:])
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("Outputs:", "Resources:"))), len(lines))
    return "\n".join(lines[start:end]).rstrip()


def run(operation: str, call: Callable[[], T]) -> T:
    """`call()` (a Stack method); a failure becomes a StackError carrying Pulumi's diagnostics."""
    try:
        return call()
    except auto.errors.CommandError as e:
        raise StackError(f"pulumi {operation} failed:\n{diagnostics(str(e))}") from None


def passphrase(state: Path) -> str:
    if value := os.environ.get(PASSPHRASE_ENV):
        return value
    path = state / ".passphrase"
    if not path.is_file():
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def write_argocd_manifests(path: Path, *, env: Environment, in_cluster: bool) -> Path:
    """What the stack applies of Argo CD at the pinned version: its whole install on locally
    built images (`in_cluster`), else its CRDs and base configuration."""
    namespace = env.gitops.argocd_namespace
    docs: list[dict[str, Any]]
    if in_cluster:
        images = {"argocd": argocd_image(), "redis": REDIS_IMAGE}
        docs = upstream.install(namespace=namespace, images=images, settings=argocd_settings(env.gitops.poll_interval_s))
    else:
        docs = [*upstream.crds(), *upstream.base_config(namespace=namespace)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump_all(docs, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
    return path


def pulumi_command(home: Path) -> auto.PulumiCommand:
    """The toolchain's CLI, laid out as the Automation API expects (`<root>/bin/pulumi`)."""
    binary = ensure_tool("pulumi")
    bin_dir = home / "cli" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "pulumi"
    if not link.exists() or link.resolve() != binary.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(binary)
    return auto.PulumiCommand(root=str(bin_dir.parent))


def local_stack(env: Environment, *, state: Path, kubeconfig: Path, argocd_manifests: Path,
                clone_url: str | None) -> auto.Stack:
    """The stack named after `env` in a file backend under `state`, configured for the cluster."""
    state = state.expanduser().resolve()
    backend, home, work = state / "backend", state / "home", state / "project"
    for d in (backend, home, work):
        d.mkdir(parents=True, exist_ok=True)
    env_vars = {
        "PULUMI_BACKEND_URL": f"file://{backend}",
        PASSPHRASE_ENV: passphrase(state),
        # Dynamic providers (the publish step, the cluster's objects) run in this interpreter.
        "PULUMI_PYTHON_CMD": sys.executable,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(work), pulumi_home=str(home), env_vars=env_vars, pulumi_command=pulumi_command(home),
        project_settings=auto.ProjectSettings(name=PROJECT, runtime="python"),
    )
    def program() -> None:  # Pulumi's inline program returns nothing; deploy's component registers itself
        deploy(env, LocalTarget.from_config())

    stack = auto.create_or_select_stack(stack_name=env.name, project_name=PROJECT, program=program, opts=opts)
    config = {"kubeconfig": str(kubeconfig.resolve()), "argocdManifests": str(argocd_manifests.resolve())}
    if clone_url:
        config["gitopsCloneUrl"] = clone_url
    values = {f"{CONFIG}:{k}": auto.ConfigValue(v) for k, v in config.items()}
    if env.images.registry == registry.HOST:  # the publish step checks the registry holds each digest
        values[f"{CONFIG}:registryCredentials"] = auto.ConfigValue(registry.local_registry().credentials(), secret=True)
    stack.set_all_config(values)
    return stack


def record_pushed(env: Environment) -> str:
    """Where `mlops images push` leaves the digests (env.images) for the next `pulumi up`: the
    local site's images.json, or the cloud stack's config mlops:imageDigests. Returns where."""
    if env.aws is None:
        site = LocalSite.of(env)
        site.record_images(env)
        return str(site.images_file)
    key = f"{CONFIG}:{IMAGE_DIGESTS}"
    done = subprocess.run([str(ensure_tool("pulumi")), "config", "set", "--stack", env.name, key,
                           json.dumps(env.images.digests, sort_keys=True)],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"stack {env.name}: `pulumi config set {key}` failed: {reason}; is this shell logged "
                         "in to the stack's backend (`pulumi login`)? The images are pushed: set it by hand")
    return f"stack {env.name}'s config {key}"
