"""numba kernels of the frame sources."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}


@numba.njit(**_JIT)
def scatter_payloads(flat: Any, lengths: Any, out: Any) -> None:
    """Copy the payloads laid end to end in ``flat`` into the rows of ``out``."""
    pos = 0
    for row in range(len(lengths)):
        n = lengths[row]
        for k in range(n):
            out[row, k] = flat[pos + k]
        pos += n


def warm_up() -> None:
    """Load the kernels (from numba's cache) now rather than on the first frames."""
    scatter_payloads(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros((0, 8), np.uint8))
