"""Errors of the inference core: each says what was expected, what was seen, where, and what to do."""

from __future__ import annotations


class InferenceError(RuntimeError):
    """Base of every inference-core error."""


class DatasetError(InferenceError, ValueError):
    """A dataset that does not match its schema (shape, dtype, NaN, labels)."""


class RegistryError(InferenceError):
    """The registry cannot do what was asked (unknown version, nothing to roll back to)."""


class NoActiveVersion(RegistryError):
    """No version has been promoted yet."""


class ArtifactError(RegistryError):
    """A stored model version is corrupt or does not match its metadata: it is never served."""

    def __init__(self, message: str, *, uri: str, version: str) -> None:
        super().__init__(f"model version {version!r} in {uri}: {message}")
        self.uri = uri
        self.version = version


class SchemaMismatch(ArtifactError):
    """The artifact's feature schema differs from the one expected by the caller or by its own files."""


class ContractMismatch(RegistryError):
    """A schema that differs from the family's contract: never promoted, never declared over it."""


class RuntimeUnavailable(InferenceError):
    """The requested serving runtime cannot load the artifact."""
