"""Give back the compiler's memory once the numba kernels are loaded, and keep the garbage
collector off the objects of start-up.

Loading numba's cached kernels initialises LLVM, which touches about 70 MB of the llvmlite
library's pages. The agent needs none of them afterwards: the kernels are machine code
already in memory. `release_compiler_pages` asks the kernel to drop those pages
(``madvise(MADV_PAGEOUT)``, Linux 5.4 and later). They are clean pages of a file, so nothing
is written anywhere; should numba ever compile again, they are read back in on demand. On a
small gateway this is the difference between about 150 MB and 90 MB resident. The kernel
reclaims only pages no other process maps: with a second numba process on the machine
sharing the library, its pages stay resident (and are counted by both).

`freeze_start_up` moves every object alive after start-up (numba's and llvmlite's modules,
the catalogue: about 120,000 objects) out of the garbage collector's generations
(`gc.freeze`). A full collection would otherwise walk them all, 12 to 18 ms during which the
receive loop reads no frame; at 18,000 frames/s that is about as many frames as a SocketCAN
socket's default buffer holds. Objects made later are collected as usual.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from pathlib import Path

__all__ = ["freeze_start_up", "release_compiler_pages", "thaw_start_up"]

log = logging.getLogger(__name__)

_MADV_PAGEOUT = 21
_LIBRARY = "libllvmlite.so"


def release_compiler_pages() -> int:
    """Drop the resident pages of llvmlite's library; returns the bytes advised (0 if none)."""
    try:
        maps = Path("/proc/self/maps").read_text()
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    advised = 0
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 6 or not fields[5].endswith(_LIBRARY):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if madvise(start, end - start, _MADV_PAGEOUT) == 0:
            advised += end - start
        else:
            log.debug("madvise(MADV_PAGEOUT) on %s failed: errno %d", fields[5], ctypes.get_errno())
            return advised
    if advised:
        log.info(
            "released llvmlite's pages (%d MB mapped) now that the kernels are loaded",
            advised >> 20,
        )
    return advised


_freezes = 0  # agents running with start-up's objects set aside
_freezes_lock = threading.Lock()


def freeze_start_up() -> int:
    """Collect once, then keep the garbage collector off every object alive now; returns
    how many objects are set aside. Counted: each call is undone by one `thaw_start_up`."""
    global _freezes
    with _freezes_lock:
        gc.collect()
        gc.freeze()
        _freezes += 1
        frozen = gc.get_freeze_count()
    log.debug("%d objects of start-up set aside from garbage collection", frozen)
    return frozen


def thaw_start_up() -> None:
    """Undo one `freeze_start_up`; the last gives the objects back to the garbage collector."""
    global _freezes
    with _freezes_lock:
        _freezes = max(_freezes - 1, 0)
        if not _freezes:
            gc.unfreeze()
