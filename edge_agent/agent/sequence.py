"""Sequence numbers that never repeat across restarts, kill -9 and power loss.

The cloud drops a telemetry batch whose sequence number it has already stored, so a number
must never be handed out twice for one vehicle. The store reserves numbers in blocks: it
durably records the end of the current block (write, fsync, rename, fsync the directory)
before handing out any number of it, so after a crash the agent resumes at the next block.
A restart leaves a gap, never a repeat.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

__all__ = ["SequenceStore"]

log = logging.getLogger(__name__)

_BLOCK = 1024


class SequenceStore:
    """Counters by name (``telemetry``, ``event``), persisted in a small JSON file."""

    def __init__(self, path: str | os.PathLike[str], *, block: int = _BLOCK) -> None:
        self.path = Path(path)
        self.block = block
        self._reserved: dict[str, int] = {}
        self._next: dict[str, int] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = "{}"
        try:
            stored = json.loads(text)
            if not isinstance(stored, dict) or not all(
                isinstance(v, int) and v >= 0 for v in stored.values()
            ):
                raise ValueError("not an object of counters")
        except ValueError as exc:
            raise ValueError(f"{self.path}: not a sequence file ({exc})") from None
        self._reserved = dict(stored)
        self._next = dict(stored)

    def next(self, name: str) -> int:
        """The next number of counter ``name`` (starting at 0 for a new counter)."""
        value = self._next.get(name, 0)
        if value >= self._reserved.get(name, 0):
            self._reserved[name] = value + self.block
            self._write()
        self._next[name] = value + 1
        return value

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = json.dumps(self._reserved, sort_keys=True).encode("ascii")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
