"""The load room's errors: each says what was expected, what was seen, where, and what to do."""

from __future__ import annotations


class LoadError(Exception):
    """Base of every error raised by `harness.load`; its text is one actionable line."""


class TargetError(LoadError):
    """The system under test cannot be reached or is not the inference API we expect."""


class SchemaError(LoadError):
    """The API's /v1/model answer does not describe a feature schema we can generate rows for."""


class LoadRunError(LoadError):
    """Locust itself did not complete a run (crash, timeout, missing statistics)."""


class BaselineError(LoadError):
    """A baseline file that exists but cannot be read as a baseline."""
