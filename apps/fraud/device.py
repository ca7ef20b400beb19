"""One code path for CPU and GPU: the device comes from DEVICE (auto|cpu|gpu) and what exists.

`gpu` asked for on a machine without one falls back to CPU with a warning, so the same image
runs on either node pool; `auto` takes the GPU only when one is usable.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import numpy as np
import structlog

Requested = Literal["auto", "cpu", "gpu"]
Device = Literal["cuda", "cpu"]

log = structlog.get_logger(__name__)


def cuda_available() -> bool:
    """True when ONNX Runtime offers CUDA and a GPU device node exists (a CPU build offers neither)."""
    from pathlib import Path

    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers() and Path("/dev/nvidia0").exists()


@dataclass(frozen=True)
class DeviceChoice:
    requested: Requested
    device: Device
    reason: str

    @property
    def providers(self) -> list[str]:
        """ONNX Runtime providers for this choice, CPU always last as the fallback."""
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.device == "cuda" else ["CPUExecutionProvider"]

    def array_module(self) -> ModuleType:
        """cupy on a GPU when installed, numpy otherwise (the same array code runs on both)."""
        if self.device == "cuda":
            try:
                import cupy  # noqa: F401 - optional GPU extra

                return cupy
            except ImportError:
                log.warning("cupy_missing_arrays_on_cpu", stage_device=self.device)
        return np


def resolve_device(requested: Requested, *, stage: str, gpu_present: bool | None = None) -> DeviceChoice:
    """The device a stage runs on; logs the choice, and a warning when a GPU was asked for in vain."""
    if requested not in ("auto", "cpu", "gpu"):
        raise ValueError(f"DEVICE: expected auto, cpu or gpu, got {requested!r}")
    present = cuda_available() if gpu_present is None else gpu_present
    if requested == "cpu":
        choice = DeviceChoice(requested, "cpu", "DEVICE=cpu")
    elif present:
        choice = DeviceChoice(requested, "cuda", f"DEVICE={requested} and a CUDA GPU is available")
    elif requested == "gpu":
        choice = DeviceChoice(requested, "cpu", "DEVICE=gpu but no CUDA GPU is available: falling back to CPU")
        log.warning("gpu_unavailable_cpu_fallback", stage=stage, requested=requested, device="cpu", reason=choice.reason)
        return choice
    else:
        choice = DeviceChoice(requested, "cpu", "DEVICE=auto and no CUDA GPU is available")
    log.info("device_selected", stage=stage, requested=requested, device=choice.device, reason=choice.reason)
    return choice
