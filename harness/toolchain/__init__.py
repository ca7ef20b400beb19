"""Toolchain: pinned upstream binaries built from their published Go modules.

    from harness.toolchain import ensure_tool
    kubectl = ensure_tool("kubectl")   # built once into ~/.cache/mlops-toolkit/tools
"""

from harness.toolchain.build import cache_root, ensure_tool, ensure_tools, tool_status
from harness.toolchain.errors import ToolBuildError, ToolchainError, UnknownToolError
from harness.toolchain.manifest import load_manifest

__all__ = [
    "ToolBuildError",
    "ToolchainError",
    "UnknownToolError",
    "cache_root",
    "ensure_tool",
    "ensure_tools",
    "load_manifest",
    "tool_status",
]
