"""Toolchain: pinned upstream binaries built from their published Go modules.

    from harness.toolchain import ensure_tool
    kubectl = ensure_tool("kubectl")   # built once into <cache root>/tools (harness.config)
"""

from harness.toolchain.build import ensure_tool, ensure_tools, tool_status, tools_dir
from harness.toolchain.errors import ToolBuildError, ToolchainError, UnknownToolError
from harness.toolchain.manifest import load_manifest

__all__ = [
    "ToolBuildError",
    "ToolchainError",
    "UnknownToolError",
    "ensure_tool",
    "ensure_tools",
    "load_manifest",
    "tool_status",
    "tools_dir",
]
