"""Serving runtimes: ONNX Runtime by default (CUDA when the machine has it, CPU otherwise),
scikit-learn as the fallback.

    >>> predictor = load_runtime(registry.load())      # doctest: +SKIP
    >>> predictor.backend, predictor.device            # doctest: +SKIP
    ('onnxruntime', 'cpu')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from apps.inference.dataset import FeatureSchema
from apps.inference.errors import RuntimeUnavailable
from apps.inference.registry import ModelArtifact
from apps.inference.training import ONNX_INPUT, ONNX_PROBABILITIES

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

Backend = Literal["onnxruntime", "sklearn"]
Device = Literal["cuda", "cpu"]


class Predictor(Protocol):
    backend: Backend
    device: Device
    schema: FeatureSchema
    version: str

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def select_providers(available: Sequence[str]) -> list[str]:
    """CUDA first when ONNX Runtime offers it, always CPU as the fallback."""
    return [CUDA, CPU] if CUDA in available else [CPU]


def default_threads() -> int:
    # The cores this process may run on (a pinned worker or a container CPU set), not the host's.
    return max(1, len(os.sched_getaffinity(0)))


class OnnxPredictor:
    backend: Backend = "onnxruntime"

    def __init__(self, artifact: ModelArtifact, *, providers: Sequence[str] | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn the core the event loop needs between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        available = ort.get_available_providers()
        requested = [p for p in providers if p in available] if providers is not None else select_providers(available)
        try:
            self._session = ort.InferenceSession(artifact.onnx_bytes, sess_options=options, providers=requested or [CPU])
        except Exception as e:
            raise RuntimeUnavailable(f"ONNX Runtime cannot load model version {artifact.version!r}: {e}") from e
        # ORT silently drops CUDA when the driver or GPU is missing: report what it actually uses.
        self.providers = self._session.get_providers()
        self.device: Device = "cuda" if self.providers and self.providers[0] == CUDA else "cpu"
        self.schema = artifact.schema
        self.version = artifact.version
        self._run = self._session.run
        self._outputs = [ONNX_PROBABILITIES]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if X.dtype != np.float32 or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=np.float32)
        return self._run(self._outputs, {ONNX_INPUT: X})[0]


class SklearnPredictor:
    backend: Backend = "sklearn"
    device: Device = "cpu"

    def __init__(self, artifact: ModelArtifact) -> None:
        if not artifact.sklearn_bytes:
            raise RuntimeUnavailable(f"model version {artifact.version!r} was loaded without its scikit-learn file")
        self._model = artifact.sklearn_model
        self.schema = artifact.schema
        self.version = artifact.version
        self.providers: list[str] = []

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict_proba(np.asarray(X, dtype=np.float32)), dtype=np.float32)


def load_runtime(artifact: ModelArtifact, *, prefer: Literal["onnx", "sklearn"] = "onnx",
                 providers: Sequence[str] | None = None, threads: int | None = None) -> Predictor:
    """The preferred runtime, falling back to the other when it cannot load the artifact."""
    if prefer not in ("onnx", "sklearn"):
        raise ValueError(f"prefer: expected 'onnx' or 'sklearn', got {prefer!r}")
    if prefer == "sklearn":
        return SklearnPredictor(artifact)
    try:
        return OnnxPredictor(artifact, providers=providers, threads=threads)
    except (RuntimeUnavailable, ImportError) as onnx_error:
        if not artifact.sklearn_bytes:
            raise
        import structlog

        structlog.get_logger().warning("onnx_runtime_unavailable_using_sklearn", version=artifact.version,
                                       error=str(onnx_error))
        return SklearnPredictor(artifact)
