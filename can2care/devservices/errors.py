"""Errors of the development service manager.

Every error is one line that names the cause and, where there is one, the remedy::

    ServiceError
     +-- BinaryMissingError    a server binary or the TimescaleDB extension is not installed
     +-- PortInUseError        the requested port is taken by another process
     +-- DataDirError          the data directory is corrupt, foreign or unreachable
     +-- ServiceStartError     the server started but failed or did not become ready
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of every development service error."""


class BinaryMissingError(ServiceError):
    """A server binary (or the TimescaleDB extension) is not installed."""


class PortInUseError(ServiceError):
    """The port a service was asked to listen on is already in use."""

    def __init__(self, service: str, host: str, port: int) -> None:
        super().__init__(
            f"{service} port {port} on {host} is already in use by another process; "
            "free it or choose another port"
        )
        self.service = service
        self.host = host
        self.port = port


class DataDirError(ServiceError):
    """The data directory cannot be used (corrupt, wrong version, not reachable)."""


class ServiceStartError(ServiceError):
    """The server process failed or did not become ready in time."""
