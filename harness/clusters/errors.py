"""The clusters package's errors: what was expected, what was seen, where, and what to do."""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every cluster error."""


class ProviderUnavailableError(ClusterError):
    """This provider cannot run on this machine; the message is the reason (tests skip with it)."""


class UnknownProviderError(ClusterError):
    """A provider name that is not one of the registry's (harness/clusters/providers)."""

    def __init__(self, name: str, *, expected: tuple[str, ...]) -> None:
        super().__init__(f"unknown provider {name!r}; expected one of {', '.join(expected)}")
        self.name = name
        self.expected = expected


class ClusterCommandError(ClusterError):
    def __init__(self, *, command: list[str], returncode: int, output: str, hint: str = "") -> None:
        tail = "\n".join(output.strip().splitlines()[-30:])
        text = f"`{' '.join(command)}` exited {returncode}:\n{tail}"
        super().__init__(f"{text}\nhint: {hint}" if hint else text)
        self.command = command
        self.returncode = returncode
        self.output = output


class DeployError(ClusterError):
    """The API server refused an object of a rendered tree."""

    def __init__(self, *, ref: str, path: str, status: int, reason: str) -> None:
        super().__init__(f"{ref} ({path}) was refused by the API server (HTTP {status}): {reason}")
        self.ref = ref
        self.path = path
        self.status = status
        self.reason = reason
