"""Everything the containers need, in order: engine → base → wheelhouse → app images → MinIO image.

    >>> images = ensure_images(engine.client, repo_root=Path("."), settings=settings)   # doctest: +SKIP
    >>> images.tags()["ml-inference-api"]
    'ml-inference-api:5c1e0b2a9d43'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import docker
from pydantic import BaseModel, ConfigDict

from harness.containers.base import UPSTREAM_BASE, ensure_base_image
from harness.containers.errors import ImageBuildError
from harness.containers.images import APP_IMAGES, BuiltImage, ImageSpec, build_image
from harness.containers.settings import LABEL_BUILT_BY, OWNER, ContainersSettings
from harness.containers.wheelhouse import ensure_wheelhouse

REPO_ROOT = Path(__file__).resolve().parents[2]


class ImageSet(BaseModel):
    """What was built (or found) for one run, with timings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str
    images: tuple[BuiltImage, ...]

    def tags(self) -> dict[str, str]:
        return {i.name: i.tag for i in self.images}

    def by_repository(self) -> dict[str, str]:
        """Repository -> content-tagged reference, the base included: what a registry gets."""
        refs = [self.base, *self.tags().values()]
        return {ref.rsplit(":", 1)[0]: ref for ref in refs}

    def tag(self, name: str) -> str:
        for image in self.images:
            if image.name == name:
                return image.tag
        raise KeyError(f"no image named {name!r}; built: {', '.join(self.tags())}")


def ensure_minio_image(client: docker.DockerClient, *, settings: ContainersSettings, base_image: str,
                       log: Callable[[str], None] = lambda _: None) -> BuiltImage:
    """The MinIO image from the toolchain's pinned `minio` binary (built once by the toolchain)."""
    from harness.containers.objectstore import build_minio_image

    try:
        from harness.toolchain import ensure_tool
    except ImportError as e:  # the toolchain is another room's; say what is missing
        raise ImageBuildError(f"the MinIO image needs harness.toolchain.ensure_tool('minio'): {e}") from e
    return build_minio_image(client, binary=ensure_tool("minio"), base_image=base_image, settings=settings, log=log)


def ensure_app_images(client: docker.DockerClient, *, settings: ContainersSettings, base_image: str,
                      repo_root: Path = REPO_ROOT, specs: Iterable[ImageSpec] = APP_IMAGES,
                      log: Callable[[str], None] = lambda _: None) -> list[BuiltImage]:
    """Build the app images that changed; an unchanged input set costs one hash per image."""
    # With the upstream slim image a registry (and so PyPI) is there: no wheelhouse needed.
    wheelhouse = None if base_image == UPSTREAM_BASE else ensure_wheelhouse(repo_root, settings=settings, log=log)
    labels = {LABEL_BUILT_BY: OWNER}
    return [build_image(client, spec, repo_root=repo_root, base_image=base_image, wheelhouse=wheelhouse,
                        settings=settings, labels=labels, log=log) for spec in specs]


def ensure_images(client: docker.DockerClient, *, settings: ContainersSettings, repo_root: Path = REPO_ROOT,
                  base_choice: str = "auto", specs: Iterable[ImageSpec] = APP_IMAGES, with_minio: bool = True,
                  log: Callable[[str], None] = lambda _: None) -> ImageSet:
    """Base, app images and (optionally) MinIO: what `mlops harness images build` does."""
    base = ensure_base_image(client, settings=settings, choice=base_choice, log=log)
    built = ensure_app_images(client, settings=settings, base_image=base, repo_root=repo_root, specs=specs, log=log)
    if with_minio:
        built.append(ensure_minio_image(client, settings=settings, base_image=base, log=log))
    return ImageSet(base=base, images=tuple(built))
