"""Environments: one strict YAML per environment over a shared base, typed by pydantic."""

from environments.loader import EnvironmentFileError, environment_names, load_environment
from environments.model import Environment, NodeGroup, Resources

__all__ = ["Environment", "EnvironmentFileError", "NodeGroup", "Resources", "environment_names", "load_environment"]
