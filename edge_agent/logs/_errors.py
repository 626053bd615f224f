"""The exceptions of :mod:`edge_agent.logs` (the tree is drawn in the package docstring)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["LogError", "UnreadableLogError", "UnsupportedFormatError"]


class LogError(Exception):
    """A log file cannot be read at all.  ``path`` names the file."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class UnsupportedFormatError(LogError, ValueError):
    """The file's suffix names no format this package reads."""


class UnreadableLogError(LogError, OSError):
    """The file is missing, cannot be opened, or its header or container is not readable."""
