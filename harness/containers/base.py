"""The base image: `python:3.11-slim` when a registry gives it, else a debootstrap Debian rootfs with Python.

The local base is the air-gapped fallback for the very same Dockerfiles (`ARG BASE_IMAGE`): a
bookworm `minbase` rootfs with python3 (3.11) and a virtualenv at /opt/venv first on PATH, so
`python` and `pip` behave as in the slim image. It is tagged and cached by the hash of its
recipe; the rootfs tarball is kept under the cache so a wiped engine re-imports in seconds.

    >>> tag = ensure_base_image(client, settings=settings)      # doctest: +SKIP
    'mlops-base:bookworm-py311-3f2a…'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from pydantic import BaseModel, ConfigDict

from harness.containers.errors import ImageBuildError
from harness.containers.settings import LABEL_BUILT_BY, OWNER, ContainersSettings

UPSTREAM_BASE = "python:3.11-slim"
BASE_REPOSITORY = "mlops-base"
VENV = "/opt/venv"
_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BaseRecipe(BaseModel):
    """What goes into the local base; its hash is the image tag and the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = "bookworm"  # bookworm's python3 is 3.11, the version the project pins
    variant: str = "minbase"
    packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    mirror: str = "http://deb.debian.org/debian"
    # Steps run in the rootfs after debootstrap; bump `revision` when their meaning changes.
    revision: int = 1

    def digest(self) -> str:
        # The mirror only says where bytes come from, not what they are: not part of the key.
        material = self.model_dump(exclude={"mirror"})
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]

    def tag(self) -> str:
        # The image is the rootfs plus the import settings: both name it.
        h = hashlib.sha256("\0".join([self.digest(), *import_changes(self)]).encode()).hexdigest()[:12]
        return f"{BASE_REPOSITORY}:{self.suite}-py311-{h}"


def import_changes(recipe: BaseRecipe) -> list[str]:
    """The Dockerfile settings `docker import` applies: what a python:3.11-slim user relies on."""
    return [
        f"ENV PATH={_PATH}",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL_BUILT_BY}={OWNER} org.opencontainers.image.base.name=debian:{recipe.suite}",
        'CMD ["python3"]',
    ]


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _run(argv: list[str], *, what: str, log: Callable[[str], None]) -> None:
    log(f"{what}: {' '.join(argv[:6])}{' …' if len(argv) > 6 else ''}")
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.decode(errors="replace").splitlines()[-20:])
        raise ImageBuildError(f"{what} failed with exit code {done.returncode}:\n{tail}")


def _nice(settings: ContainersSettings) -> list[str]:
    nice = shutil.which("nice")
    return [nice, "-n", str(settings.nice)] if nice else []


def build_rootfs_tarball(recipe: BaseRecipe, *, dest: Path, settings: ContainersSettings,
                         log: Callable[[str], None]) -> Path:
    """debootstrap the recipe into a temporary folder and pack it as `dest` (atomically)."""
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists()
                                                  else None)
    if debootstrap is None:
        raise ImageBuildError("no registry gave python:3.11-slim and debootstrap is not installed: "
                              "apt-get install debootstrap (harness/setup.sh does), or set MLOPS_BASE_IMAGE")
    if os.geteuid() != 0:
        raise ImageBuildError("building the local base image runs debootstrap, which needs root: run as root, "
                              "or set MLOPS_BASE_IMAGE to an image you have")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix="rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        try:
            _build_rootfs(recipe, root=root, dest=dest, debootstrap=debootstrap, settings=settings, log=log)
        finally:
            _unmount_under(root)  # an interrupted debootstrap may leave /proc or /sys mounted in it
    return dest


def _unmount_under(root: Path) -> None:
    try:
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)


def _build_rootfs(recipe: BaseRecipe, *, root: Path, dest: Path, debootstrap: str, settings: ContainersSettings,
                  log: Callable[[str], None]) -> None:
    """debootstrap → a venv at /opt/venv → trim what a slim image leaves out → pack as `dest`."""
    _run(_nice(settings) + [debootstrap, f"--variant={recipe.variant}", f"--include={','.join(recipe.packages)}",
                            recipe.suite, str(root), recipe.mirror], what="debootstrap", log=log)
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    _run(_nice(settings) + [chroot, str(root), "/usr/bin/python3", "-m", "venv", VENV],
         what="python venv in the rootfs", log=log)
    # What a slim image leaves out: apt lists, caches, docs and manuals.
    for junk in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/info"):
        target = root / junk
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    partial = dest.with_suffix(".partial")
    _run(["tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
          "-C", str(root), "-cf", str(partial), "."], what="pack the rootfs", log=log)
    partial.replace(dest)


def import_base(client: docker.DockerClient, tarball: Path, recipe: BaseRecipe) -> str:
    """`docker import` the rootfs with the settings a python:3.11-slim user relies on."""
    repository, tag = recipe.tag().split(":", 1)
    try:
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag,
                                          changes=import_changes(recipe))
    except docker.errors.APIError as e:
        raise ImageBuildError(f"docker import of {tarball} as {recipe.tag()} failed: {e}") from e
    return recipe.tag()


def ensure_base_image(client: docker.DockerClient, *, settings: ContainersSettings, choice: str = "auto",
                      recipe: BaseRecipe | None = None, log: Callable[[str], None] = lambda _: None) -> str:
    """The BASE_IMAGE to build with.

    `choice`: "auto" (python:3.11-slim if present or pullable, else the local base), "local"
    (always the debootstrap base), or an image reference used as is.
    """
    recipe = recipe or BaseRecipe()
    if choice not in ("auto", "local"):
        if not image_exists(client, choice):
            try:
                client.images.pull(choice)
            except docker.errors.APIError as e:
                raise ImageBuildError(f"base image {choice!r} (MLOPS_BASE_IMAGE) is neither local nor pullable: {e}") from e
        return choice
    if choice == "auto":
        if image_exists(client, UPSTREAM_BASE):
            return UPSTREAM_BASE
        try:
            client.images.pull(UPSTREAM_BASE)
            return UPSTREAM_BASE
        except docker.errors.APIError:
            log(f"no registry gave {UPSTREAM_BASE}: using the local debootstrap base")
    tag = recipe.tag()
    if image_exists(client, tag):
        return tag
    tarball = settings.cache_dir / "base" / f"{recipe.suite}-{recipe.digest()}.tar"
    if not tarball.exists():
        build_rootfs_tarball(recipe, dest=tarball, settings=settings, log=log)
    log(f"importing {tarball} as {tag}")
    return import_base(client, tarball, recipe)
