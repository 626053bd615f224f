"""Errors of the exporters::

ExportError    an output cannot be written (unknown format, missing pyarrow, ...)
"""


class ExportError(Exception):
    """An output cannot be written; the message names the output and why."""
