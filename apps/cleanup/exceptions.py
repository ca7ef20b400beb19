"""Errors of the cleanup job."""

from __future__ import annotations


class CleanupError(RuntimeError):
    """The retention job cannot run as configured."""


class SettingsError(CleanupError, ValueError):
    """An environment variable has a value the job cannot use."""
