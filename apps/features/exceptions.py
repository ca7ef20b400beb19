"""Errors of the featurisation: each says what was expected, what was seen and where."""

from __future__ import annotations


class FeatureError(ValueError):
    """A feature vector or a featuriser input is not what the model expects."""


class EmbedderUnavailable(RuntimeError):
    """The packaged MiniLM model cannot be loaded (package absent or its files incomplete)."""
