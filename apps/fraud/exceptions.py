"""Errors of the fraud pipeline and its file queue."""

from __future__ import annotations


class FraudPipelineError(RuntimeError):
    """Base of the fraud pipeline's errors."""


class QueueError(FraudPipelineError):
    """The queue directory cannot be used (missing, not writable, bad name)."""


class LeaseLost(FraudPipelineError):
    """The worker's lease on an item expired and another worker took it over: drop the work."""


class PoisonItem(FraudPipelineError, ValueError):
    """The item can never be processed (it fails validation): straight to dead-letter, no retries."""


class SettingsError(FraudPipelineError, ValueError):
    """An environment variable of a stage has a value the stage cannot use."""
