"""Giving back llvmlite's pages once the kernels are loaded: less resident memory, and the
kernels still run. Setting start-up's objects aside from the garbage collector for a run."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.agent._memory import release_compiler_pages
from edge_agent.config import load_config

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


def test_a_running_agent_keeps_the_collector_off_start_up_objects(tmp_path: Path) -> None:
    """From `start` to `close`, every object alive at start is out of the collector's
    generations, so a full collection walks only what the run makes; then they go back."""
    config = load_config(
        None,
        env={},
        overrides={
            "vehicle.id": "gc-1",
            "can.interface": "virtual",
            "outbox.path": tmp_path / "outbox.sqlite",
        },
    )
    agent = Agent(config, connect=False)
    second = Agent(
        replace(config, outbox=replace(config.outbox, path=tmp_path / "second.sqlite")),
        connect=False,
    )
    try:
        agent.start()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # numba's and the catalogue's objects, at least
        assert len(gc.get_objects()) < frozen  # what a full collection still walks
        second.start()
        agent.process(urban_frames().slice(0, 2000))
    finally:
        agent.close(drain_s=0)
    assert gc.get_freeze_count() > 10_000  # the second agent still runs
    second.close(drain_s=0)
    assert gc.get_freeze_count() == 0
