"""The demo's fleet: every kind in turn, hard negatives, drives inside the window."""

from __future__ import annotations

from collections import Counter

import pytest

from simulators.demo_fleet import DEMO_KINDS, HARD_NEGATIVE, build_demo_fleet, demo_kind


def test_fleet_mixes_kinds_and_fits_the_window() -> None:
    end = 1_795_000_000.0
    drives = build_demo_fleet(21, 4, duration_s=3600.0, end_time=end)
    kinds = Counter(demo_kind(d) for d in drives)
    assert kinds[HARD_NEGATIVE] == 7
    assert all(kinds[k] >= 2 for k in DEMO_KINDS) and sum(kinds.values()) == 21
    assert len({d.vehicle_id for d in drives}) == 21
    assert all(d.vehicle_id.startswith("C2CDEMO004") and len(d.vehicle_id) == 17 for d in drives)
    for d in drives:
        assert end - 3600.0 <= d.config.start_time
        assert d.config.start_time + d.config.duration <= end + 0.01
    assert {d.config.variant for d in drives} == {"ev", "combustion"}
    again = build_demo_fleet(21, 4, duration_s=3600.0, end_time=end)
    assert [d.config for d in again] == [d.config for d in drives]


def test_fleet_needs_an_hour() -> None:
    with pytest.raises(ValueError, match="at least"):
        build_demo_fleet(5, duration_s=1800.0, end_time=0.0)
