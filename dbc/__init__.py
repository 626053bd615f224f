"""DBC files and their signal maps to canonical COVESA VSS signal names, as package data."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

__all__ = ["data_file"]


def data_file(name: str) -> Traversable:
    """A file shipped in this package (a DBC or a signal map), by its name."""
    return files(__name__).joinpath(name)
