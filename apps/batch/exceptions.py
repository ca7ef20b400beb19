"""Errors of the batch pipeline: what was expected, what was seen, where, and what to do."""

from __future__ import annotations


class BatchError(RuntimeError):
    """Base of the batch pipeline's errors."""


class SettingsError(BatchError, ValueError):
    """An environment variable or option has a value the pipeline cannot use."""


class SourceError(BatchError):
    """The input partition is missing or does not have the input schema."""


class ModelMismatch(BatchError):
    """No usable model: none promoted, or the active one does not take the vectors this pipeline produces."""


class OutputSchemaError(BatchError):
    """Formatted output rows fail the output schema: a bug in postprocessing, not bad input."""
