"""The errors of the local Argo CD harness: what was expected, what was seen, what to do."""

from __future__ import annotations


class ArgoLocalError(RuntimeError):
    """Base of every error here."""


class ProcessFailedError(ArgoLocalError):
    """A process we started exited or never became ready; its log tail is in the message."""

    def __init__(self, *, name: str, detail: str, log_tail: str, hint: str = "") -> None:
        text = f"{name}: {detail}\n--- last lines of its log:\n{log_tail}"
        super().__init__(f"{text}\nhint: {hint}" if hint else text)
        self.name = name


class UpstreamManifestError(ArgoLocalError):
    """Argo CD's own manifests (CRDs, config) could not be read from its Go module."""
