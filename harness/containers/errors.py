"""The few errors of the containers room; each says what was expected, what was seen, and what to do."""

from __future__ import annotations


class ContainersError(RuntimeError):
    """Base class: anything the images/containers harness cannot do."""


class EngineError(ContainersError):
    """No Docker engine answers and none could be started."""


class ImageBuildError(ContainersError):
    """A base or app image could not be built (the build log's tail is in the message)."""


class ContainerFailedError(ContainersError):
    """A container exited or never became ready; its logs are in the message."""


class RegistrySeedError(ContainersError):
    """A model registry could not be given a model to serve (the seeding process's stderr is in the message)."""


class EngineUnavailableError(EngineError):
    """This machine cannot have an engine (dockerd not installed, or no right to start it): tests skip."""
