"""Giving back llvmlite's pages once the kernels are loaded: less resident memory, and the
kernels still run."""

from __future__ import annotations

from pathlib import Path

from edge_agent.agent._memory import release_compiler_pages

from .._drive import decoder, urban_frames


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_pages_go_and_decoding_still_works() -> None:
    import numba

    frames = urban_frames()
    before = decoder().decode(frames)
    # compile something new, so LLVM's pages are resident whatever ran before this test
    assert numba.njit(lambda x: x * 3 + 1)(2) == 7
    rss = _rss_kb()
    assert release_compiler_pages() > 0
    assert _rss_kb() < rss
    after = decoder().decode(frames)
    assert after.stats == before.stats
    assert (after.raw[after.present] == before.raw[before.present]).all()
