"""Errors of the batch decoder::

DecoderError
 +-- UnsupportedSignalError   a DBC signal the decoder cannot represent (e.g. > 64 bits)
"""

from __future__ import annotations


class DecoderError(Exception):
    """Base class of the decoder's errors."""


class UnsupportedSignalError(DecoderError):
    """A signal of the database cannot be compiled (the message names it)."""
