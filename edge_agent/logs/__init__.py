"""CAN log files in, :class:`~edge_agent.frames.FrameBatch` chunks out.

Formats, chosen by suffix, each optionally gzip-compressed (``.gz``):

* ``.log``: can-utils ``candump -l`` logs, read by a compiled vectorised scanner that agrees
  with python-can's ``CanutilsLogReader`` field by field;
* ``.asc`` (Vector ASCII), ``.blf`` (Vector binary) and ``.trc`` (PEAK PCAN), read through
  python-can's readers.

A bad line never stops a file: it is skipped, counted and reported (line number, reason,
the line shortened) in a :class:`ReadReport`, and every other frame is read.  How each
format keeps going is described in :mod:`edge_agent.logs._candump` and
:mod:`edge_agent.logs._pycan`.

Large files are read in chunks (:class:`LogReader`, with :attr:`LogReader.progress` for a
progress bar); :func:`read_log` reads a whole file into one batch.

Exceptions::

    LogError                      a log file cannot be read at all (names the file)
    ├── UnsupportedFormatError    unknown suffix (also a ValueError)
    └── UnreadableLogError        missing, unopenable, not gzip, unusable BLF or TRC header,
                                  or a read error (also an OSError)

Both are permanent: retrying the same file gives the same error.
"""

from ._errors import LogError, UnreadableLogError, UnsupportedFormatError
from ._formats import LogFormat
from ._reader import DEFAULT_CHUNK_FRAMES, LogReader, read_log
from ._report import BadLine, Progress, ReadReport

__all__ = [
    "DEFAULT_CHUNK_FRAMES",
    "BadLine",
    "LogError",
    "LogFormat",
    "LogReader",
    "Progress",
    "ReadReport",
    "UnreadableLogError",
    "UnsupportedFormatError",
    "read_log",
]
