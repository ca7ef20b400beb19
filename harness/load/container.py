"""The API under test as its real container, through the containers harness (the CI path).

    >>> with container_stack() as stack, stack.api(env=env, faults=Faults()) as api:
    ...     run_gate(env=env, profile="mixed", target_url=api.url, out_dir=Path(".artifacts/load"))

One stack per run: the Docker engine (started when none answers), the images (built only when
their inputs changed), a session network and the S3-compatible store holding a seeded model
registry. Every object carries the session's labels and is removed on the way out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from testcontainers.core.network import Network

from environments.model import Environment
from harness.containers.build import ImageSet, ensure_images
from harness.containers.cleanup import reaper_disabled, remove_session
from harness.containers.engine import docker_engine
from harness.containers.runners import API_PORT, Running, inference_api
from harness.containers.services import S3Service, s3_service, session_network
from harness.containers.settings import ContainersSettings, default_settings
from harness.load.seed import seed_registry
from harness.load.target import Faults, api_settings_env


@dataclass
class ContainerStack:
    images: ImageSet
    network: Network
    s3: S3Service
    settings: ContainersSettings

    def registry(self, *, env: Environment) -> str:
        """A bucket of this session holding a seeded, promoted model; its registry URI."""
        uri = f"{self.s3.create_bucket(f'perf-{self.settings.session_id}')}/registry"
        seed_registry(uri, classifier=env.apps.inference_api.classifier, extra_env=self.s3.host_env())
        return uri

    @contextlib.contextmanager
    def api(self, *, env: Environment, registry_uri: str, faults: Faults | None = None) -> Iterator[Running]:
        """The `ml-inference-api` image configured from `env`, ready on /readyz, published on 127.0.0.1."""
        # The store the harness started, not the one the environment names.
        api_env = {**api_settings_env(env, registry_uri=registry_uri, port=API_PORT, faults=faults),
                   **self.s3.container_env()}
        with inference_api(image=self.images.tag("ml-inference-api"), settings=self.settings, network=self.network,
                           env=api_env) as running:
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


@contextlib.contextmanager
def api_container(*, env: Environment, faults: Faults) -> Iterator[str]:
    """For the command line: the whole stack and one API container; yields the API's URL."""
    with container_stack() as stack, stack.api(env=env, registry_uri=stack.registry(env=env), faults=faults) as api:
        if not api.url:
            raise RuntimeError("the API container published no URL")
        yield api.url
