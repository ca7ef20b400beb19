"""The one exceptions module of `infra`: every error says what was expected, what was seen,
where (environment file and field, or resource) and what to do."""

from __future__ import annotations

from dataclasses import dataclass


class InfraError(Exception):
    """Base of every error the infra program raises on purpose."""


@dataclass(frozen=True)
class Violation:
    """One broken guardrail, named by the environment file field that breaks it."""

    source: str
    field: str
    seen: str
    expected: str

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.seen}; {self.expected}"


class GuardrailError(InfraError):
    """An environment the program refuses to deploy; raised before any resource exists."""

    def __init__(self, env: str, violations: list[Violation]) -> None:
        self.env, self.violations = env, violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(f"environment {env!r} breaks {len(violations)} guardrail(s), nothing was created:\n{lines}")


class NoCloudError(InfraError):
    """An AWS-only step was asked of an environment without an `aws` block (`local`)."""


class PublishError(InfraError):
    """The GitOps publish step could not render or publish the environment's tree."""


class KubernetesObjectError(InfraError):
    """An object of the local stack could not be applied to or deleted from its cluster."""


class LocalStackError(InfraError):
    """The `local` stack's configuration (kubeconfig, Argo CD manifests) is missing or unreadable."""
