"""Decoded samples out to files: long or wide tables as CSV (numba-formatted) or Parquet."""

from .errors import ExportError
from .writers import (
    LongCsvWriter,
    ParquetWriter,
    Rename,
    SampleWriter,
    WideCsvWriter,
    open_writer,
)

__all__ = [
    "ExportError",
    "LongCsvWriter",
    "ParquetWriter",
    "Rename",
    "SampleWriter",
    "WideCsvWriter",
    "open_writer",
]
