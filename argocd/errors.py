"""The GitOps room's exceptions: each says what was expected, what was seen, where, and what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argocd.findings import Finding


class GitOpsError(Exception):
    """Base of every error this package raises; its text is one line fit for the CLI."""


class RenderError(GitOpsError):
    """An environment that cannot be rendered (a missing role ARN, a bad image tag...)."""


class ValidationFailed(GitOpsError):
    """A tree with findings: nothing leaves the machine. ``findings`` holds every one."""

    def __init__(self, env: str, findings: list[Finding]) -> None:
        self.env = env
        self.findings = findings
        first = findings[0] if findings else None
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(
            f"env {env}: {len(findings)} finding(s), first: {first}{more}; fix them, or run "
            f"`mlops argocd validate {env}` to see all"
        )


class PublishError(GitOpsError):
    """A publish that could not complete; the GitOps repository is left as it was."""
