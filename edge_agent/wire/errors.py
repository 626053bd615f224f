"""Errors of the wire codec::

    WireError                       a payload cannot be made or read
     ├── MalformedPayloadError      the bytes break the format (also a ValueError): what is
     │                              wrong and at which byte; permanent, dead-letter the payload
     ├── UnsupportedVersionError    the version byte is one this code does not read; keep the
     │                              payload for a newer reader
     ├── CatalogueMismatchError     made with another catalogue than the schema's; keep the
     │                              payload until that catalogue's schema is loaded
     ├── UnknownSignalError         no such VSS path or signal number (also a KeyError)
     └── EncodeError                a batch or event breaks the contract (also a ValueError);
                                    nothing was encoded

A reader tells the permanent failures (`MalformedPayloadError`) from those that another
version or another catalogue would read (`UnsupportedVersionError`, `CatalogueMismatchError`).
"""

from __future__ import annotations

__all__ = [
    "CatalogueMismatchError",
    "EncodeError",
    "MalformedPayloadError",
    "UnknownSignalError",
    "UnsupportedVersionError",
    "WireError",
]


class WireError(Exception):
    """Base class of the wire codec's errors."""


class MalformedPayloadError(WireError, ValueError):
    """The payload breaks the format. ``offset`` is the byte where the damage was found.

    ``section`` says what the offset counts in: ``"payload"`` (the bytes as received, which
    includes a stored body) or ``"body"`` (the decompressed telemetry body).
    """

    def __init__(self, problem: str, offset: int, section: str = "payload") -> None:
        super().__init__(f"{problem} (at byte {offset} of the {section})")
        self.problem = problem
        self.offset = offset
        self.section = section


class UnsupportedVersionError(WireError):
    """The payload's version byte is not one this code reads."""

    def __init__(self, version: int, supported: tuple[int, ...]) -> None:
        known = ", ".join(str(v) for v in supported)
        super().__init__(
            f"wire format version {version} is not supported (this code reads {known})"
        )
        self.version = version
        self.supported = supported


class CatalogueMismatchError(WireError):
    """A payload or batch was made with catalogue ``found``; the schema is for ``expected``."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"made with catalogue {found}, but the schema is for catalogue {expected}")
        self.expected = expected
        self.found = found


class UnknownSignalError(WireError, KeyError):
    """A VSS path or signal number the schema does not have."""

    def __str__(self) -> str:  # KeyError quotes its argument; this is a sentence
        return str(self.args[0]) if self.args else ""


class EncodeError(WireError, ValueError):
    """What was given to an encoder breaks the wire contract; the message says what."""
