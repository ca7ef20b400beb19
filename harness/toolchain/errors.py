"""The toolchain's errors: each names the tool, what was expected, what was seen, and what to do."""

from __future__ import annotations


class ToolchainError(Exception):
    """Base of every toolchain error."""


class UnknownToolError(ToolchainError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown tool {name!r}: the manifest pins {', '.join(sorted(known))}")
        self.name = name


class ManifestError(ToolchainError):
    """The manifest or a wrapper go.mod disagree with each other."""


class GoNotFoundError(ToolchainError):
    def __init__(self, tool: str) -> None:
        super().__init__(
            f"cannot build {tool}: no `go` on PATH. Install Go 1.26 or newer "
            "(the wrapper modules in harness/toolchain/modules need it), or put the pinned binary on PATH."
        )
        self.tool = tool


class ToolBuildError(ToolchainError):
    """`go build` failed: carries the tool, its pin, the log file and the last lines of output."""

    def __init__(self, *, tool: str, version: str, module_dir: str, returncode: int, log_path: str, tail: str) -> None:
        super().__init__(
            f"building {tool} {version} failed (go build exit {returncode}) in {module_dir}; "
            f"full log: {log_path}\n{tail}\n"
            "what to do: check that the Go module proxy is reachable (GOPROXY) and that `go version` is at "
            "least the go directive of the wrapper go.mod; a checksum mismatch means the committed go.sum "
            "and the proxy disagree: never edit go.sum by hand."
        )
        self.tool = tool
        self.version = version
        self.log_path = log_path
