"""The containers the harness runs the apps against, as one stack (the CI path).

    >>> with container_stack() as stack, stack.api(environment=api_env) as api:
    ...     httpx.get(api.url + "/readyz")                                 # doctest: +SKIP

One stack per run: the Docker engine (started when none answers), the images (built only when
their inputs changed), a session network and the S3-compatible store holding a seeded model
registry. Every object carries the session's labels and is removed on the way out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from testcontainers.core.network import Network

from harness.containers.build import ImageSet, ensure_images
from harness.containers.cleanup import reaper_disabled, remove_session
from harness.containers.engine import docker_engine
from harness.containers.runners import Running, inference_api
from harness.containers.seed import seed_registry
from harness.containers.services import S3Service, s3_service, session_network
from harness.containers.settings import ContainersSettings, default_settings


@dataclass
class ContainerStack:
    images: ImageSet
    network: Network
    s3: S3Service
    settings: ContainersSettings

    def registry(self, *, classifier: str) -> str:
        """A bucket of this session holding a seeded, promoted `classifier` model; its registry URI."""
        uri = f"{self.s3.create_bucket(f'perf-{self.settings.session_id}')}/registry"
        seed_registry(uri, classifier=classifier, extra_env=self.s3.host_env())
        return uri

    @contextlib.contextmanager
    def api(self, *, environment: Mapping[str, str]) -> Iterator[Running]:
        """The `ml-inference-api` image run as its Deployment (runners), with `environment` on top
        and this stack's store, ready on /readyz, published on 127.0.0.1."""
        # The store the harness started, not the one the environment names.
        with inference_api(image=self.images.tag("ml-inference-api"), settings=self.settings, network=self.network,
                           env={**environment, **self.s3.container_env()}) as running:
            yield running


@contextlib.contextmanager
def container_stack(settings: ContainersSettings | None = None, *, base_choice: str = "auto",
                    log: bool = True) -> Iterator[ContainerStack]:
    settings = settings or default_settings()
    with reaper_disabled(), docker_engine(settings) as engine:
        try:
            images = ensure_images(engine.client, settings=settings, base_choice=base_choice,
                                   log=print if log else (lambda _: None))
            with session_network(settings) as network, s3_service(
                image=images.tag("minio"), settings=settings, network=network
            ) as s3:
                yield ContainerStack(images=images, network=network, s3=s3, settings=settings)
        finally:
            remove_session(engine.client, settings)
