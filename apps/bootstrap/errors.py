"""Errors of the model bootstrap."""

from __future__ import annotations


class BootstrapError(RuntimeError):
    """A family's first model cannot be made as declared; the message names the family and why."""


class SettingsError(BootstrapError, ValueError):
    """An environment variable of the bootstrap Job has a value it cannot use."""
