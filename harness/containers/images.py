"""App images, built by the local engine only when their inputs changed (a content-hash tag).

The inputs of an image are its Dockerfile, the files its COPY/ADD lines name, the base image
and the wheelhouse; the build context holds exactly those (plus the wheels under
`.wheelhouse/`), so the tag changes exactly when the image would.

    >>> built = build_app_images(client, repo_root=Path("."), settings=settings)   # doctest: +SKIP
    >>> built["ml-inference-api"].tag
    'ml-inference-api:5c1e0b2a9d43'
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import docker.errors
from pydantic import BaseModel, ConfigDict

from harness.containers.errors import ImageBuildError
from harness.containers.settings import LABEL_BUILT_BY, OWNER, ContainersSettings
from harness.containers.wheelhouse import Wheelhouse

WHEELS_DIR = ".wheelhouse"  # where the build context carries the wheels (a COPY glob picks it up)
_SKIP_PARTS = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".venv", WHEELS_DIR}
_SKIP_SUFFIXES = (".pyc", ".pyo")


class ImageSpec(BaseModel):
    """One image: its repository name and its Dockerfile (relative to the repo root = the context)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dockerfile: str


class BuiltImage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tag: str
    built: bool  # False: an image with this content hash was already there
    seconds: float


APP_IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec(name="ml-inference-api", dockerfile="apps/api/Dockerfile"),
    ImageSpec(name="ml-pipeline", dockerfile="apps/Dockerfile"),
)


def _instructions(text: str) -> Iterable[tuple[str, str]]:
    """(INSTRUCTION, args) per logical line: continuations joined, comments dropped."""
    logical = re.sub(r"\\\s*\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    for line in logical.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            yield parts[0].upper(), parts[1].strip()


def copy_sources(dockerfile_text: str) -> list[str]:
    """The context paths (possibly globs) that the Dockerfile's COPY/ADD lines read."""
    sources: list[str] = []
    for instruction, args in _instructions(dockerfile_text):
        if instruction not in ("COPY", "ADD"):
            continue
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        if any(w.startswith("--from=") for w in words):
            continue  # copies from another stage, not from the context
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(p.removeprefix("./") or "." for p in paths[:-1])
    return sources


def _skipped(rel: Path) -> bool:
    return bool(_SKIP_PARTS.intersection(rel.parts)) or rel.name.endswith(_SKIP_SUFFIXES)


def context_files(repo_root: Path, sources: Iterable[str]) -> list[Path]:
    """Files (relative to the repo root) that the sources name, folders walked, caches skipped."""
    found: set[Path] = set()
    for pattern in sources:
        matches = [repo_root / pattern] if not any(c in pattern for c in "*?[") else list(repo_root.glob(pattern))
        for match in matches:
            if match.is_dir():
                found.update(p.relative_to(repo_root) for p in match.rglob("*") if p.is_file())
            elif match.is_file():
                found.add(match.relative_to(repo_root))
    return sorted(p for p in found if not _skipped(p))


def input_digest(repo_root: Path, files: Iterable[Path], *, extra: Iterable[str]) -> str:
    """sha256 over each file's path, exec bit and bytes, plus the extra strings (base id, wheels)."""
    h = hashlib.sha256()
    for rel in files:
        path = repo_root / rel
        h.update(f"{rel.as_posix()}\0{path.stat().st_mode & 0o111:o}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for item in extra:
        h.update(item.encode() + b"\0")
    return h.hexdigest()


def _image_id(client: docker.DockerClient, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def _pack(context: Path, *, repo_root: Path, files: list[Path], wheelhouse: Wheelhouse | None) -> None:
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0  # the context's bytes depend on content only
        return info

    with tarfile.open(context, "w") as tar:
        for rel in files:
            tar.add(repo_root / rel, arcname=rel.as_posix(), recursive=False, filter=clean)
        for wheel in wheelhouse.wheels if wheelhouse else ():
            tar.add(wheel, arcname=f"{WHEELS_DIR}/{wheel.name}", filter=clean)


def build_image(client: docker.DockerClient, spec: ImageSpec, *, repo_root: Path, base_image: str,
                wheelhouse: Wheelhouse | None, settings: ContainersSettings, labels: dict[str, str] | None = None,
                log: Callable[[str], None] = lambda _: None) -> BuiltImage:
    """Build `spec` unless an image with the same input hash exists; returns its tag."""
    started = time.monotonic()
    dockerfile = repo_root / spec.dockerfile
    if not dockerfile.is_file():
        raise ImageBuildError(f"{spec.name}: expected a Dockerfile at {dockerfile}, found none")
    text = dockerfile.read_text()
    files = sorted({Path(spec.dockerfile), *context_files(repo_root, copy_sources(text))})
    base_id = _image_id(client, base_image) or base_image
    digest = input_digest(repo_root, files, extra=[spec.name, spec.dockerfile, base_id,
                                                  wheelhouse.digest if wheelhouse else "pypi"])
    tag = f"{spec.name}:{digest[:12]}"
    if _image_id(client, tag):
        return BuiltImage(name=spec.name, tag=tag, built=False, seconds=time.monotonic() - started)
    log(f"building {tag} from {spec.dockerfile} on {base_image}")
    buildargs = {"BASE_IMAGE": base_image}
    if wheelhouse is not None:
        buildargs |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"}
    with tempfile.TemporaryDirectory(prefix="mlops-context-") as tmp:
        context = Path(tmp) / "context.tar"
        _pack(context, repo_root=repo_root, files=files, wheelhouse=wheelhouse)
        lines: list[str] = []
        with context.open("rb") as fileobj:
            try:
                stream = client.api.build(
                    fileobj=fileobj, custom_context=True, dockerfile=spec.dockerfile, tag=tag, buildargs=buildargs,
                    rm=True, forcerm=True, decode=True, labels={LABEL_BUILT_BY: OWNER, **(labels or {})},
                    # No network in the build: what it installs comes from the context. A low CPU
                    # weight is the engine's `nice`: builds yield to everything else on the machine.
                    network_mode="none", container_limits={"cpushares": settings.build_cpu_shares},
                )
                for chunk in stream:
                    if "stream" in chunk:
                        lines.extend(chunk["stream"].rstrip("\n").splitlines())
                    if "error" in chunk:
                        raise ImageBuildError(f"{spec.name}: docker build of {spec.dockerfile} failed: "
                                              f"{chunk['error'].strip()}\n" + "\n".join(lines[-25:]))
            except docker.errors.APIError as e:
                raise ImageBuildError(f"{spec.name}: the engine refused the build of {spec.dockerfile}: {e}") from e
    if not _image_id(client, tag):
        raise ImageBuildError(f"{spec.name}: the build ended without an image {tag}:\n" + "\n".join(lines[-25:]))
    prune_older(client, spec.name, keep=tag)
    return BuiltImage(name=spec.name, tag=tag, built=True, seconds=time.monotonic() - started)


def prune_older(client: docker.DockerClient, repository: str, *, keep: str) -> list[str]:
    """Untag this harness's older builds of `repository` (content-hash tags pile up otherwise).

    An image a container still uses is left alone, and so is one built in the last hour (another
    run on this engine may be about to start it); shared layers stay in the build cache.
    """
    removed: list[str] = []
    recent = datetime.now(UTC) - timedelta(hours=1)
    for image in client.images.list(name=repository, filters={"label": f"{LABEL_BUILT_BY}={OWNER}"}):
        created = datetime.fromisoformat(image.attrs["Created"][:19]).replace(tzinfo=UTC)
        if created > recent:
            continue
        for ref in image.tags:
            if ref != keep and ref.split(":", 1)[0] == repository:
                try:
                    client.images.remove(ref, noprune=False)
                except docker.errors.APIError:
                    continue
                removed.append(ref)
    return removed


def build_from_files(client: docker.DockerClient, tag: str, dockerfile: str, files: dict[str, Path], *,
                     labels: dict[str, str] | None = None, log: Callable[[str], None] = lambda _: None) -> None:
    """`docker build` (no network) of a context holding `dockerfile` and `files` (context name -> source)."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, source in files.items():
            tar.add(source, arcname=name)
    context.seek(0)
    log(f"building {tag}")
    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, network_mode="none",
                            labels={LABEL_BUILT_BY: OWNER, **(labels or {})})
    except (docker.errors.BuildError, docker.errors.APIError) as e:
        raise ImageBuildError(f"building {tag} failed: {e}") from e
