"""The sampler's policies against a plain-Python reference, over a simulated drive."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import SamplingConfig, SamplingPolicy, SamplingRule
from edge_agent.sampling import Sampler, SamplingError, rule_problems
from edge_agent.wire import Series

from .._drive import decoder, schema, split, urban_frames


def _sample(sampling: SamplingConfig, cuts: list[int] | None = None) -> dict[int, Series]:
    sampler = Sampler(schema(), decoder(), sampling)
    frames = urban_frames()
    for part in split(frames, cuts or []):
        sampler.feed(decoder().decode(part))
    return {s.signal: s for s in sampler.take()}


def _columns() -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every mapped signal's decoded (times ms, raw, VSS value), the reference's input."""
    decoded = decoder().decode(urban_frames())
    out = {}
    for spec in schema().signals:
        info = decoder().signal_info(f"{spec.message}.{spec.signal}")
        column = decoded.column(info)
        if len(column.rows):
            times = np.round(column.timestamps * 1000).astype(np.int64)
            out[spec.number] = (
                times,
                column.raw,
                column.values * spec.vss_scale + spec.vss_offset,
            )
    return out


def _reference(
    policy: SamplingPolicy, times: np.ndarray, raw: np.ndarray, values: np.ndarray
) -> list[int]:
    """Indices of the samples a policy sends, one sample at a time."""
    sent: list[int] = []
    last_t = last_raw = last_bucket = None
    last_value = math.nan
    min_ms = round(policy.min_interval_s * 1000)
    max_ms = round((policy.max_interval_s or 0) * 1000)
    for i, (t, r, v) in enumerate(zip(times.tolist(), raw.tolist(), values.tolist(), strict=True)):
        if policy.mode == "all":
            send = True
        elif policy.mode == "off":
            send = False
        elif policy.mode == "interval":
            bucket = t // round((policy.period_s or 0) * 1000)
            send = bucket != last_bucket
        else:
            if last_t is None:
                changed = True
            elif policy.mode == "on_change":
                changed = r != last_raw
            elif math.isnan(v) or math.isnan(last_value):
                changed = math.isnan(v) != math.isnan(last_value)
            else:
                changed = abs(v - last_value) > (policy.deadband or 0.0)
            since: int | None = None if last_t is None else t - last_t
            if changed:
                send = since is None or since >= min_ms
            else:
                send = max_ms > 0 and since is not None and since >= max_ms
        if send:
            sent.append(i)
            last_t, last_raw, last_value = t, r, v
            if policy.mode == "interval":
                last_bucket = bucket
    return sent


POLICIES = [
    SamplingPolicy("all"),
    SamplingPolicy("interval", period_s=1.0),
    SamplingPolicy("interval", period_s=0.25),
    SamplingPolicy("on_change"),
    SamplingPolicy("on_change", min_interval_s=0.5, max_interval_s=5.0),
    SamplingPolicy("deadband", deadband=0.5),
    SamplingPolicy("deadband", deadband=2.0, min_interval_s=0.2, max_interval_s=3.0),
]


@pytest.mark.parametrize(
    "policy", POLICIES, ids=lambda p: f"{p.mode}-{p.period_s}-{p.deadband}-{p.min_interval_s}"
)
def test_every_policy_matches_the_reference(policy: SamplingPolicy) -> None:
    got = _sample(SamplingConfig(default=policy, heartbeat_s=0))
    columns = _columns()
    assert columns
    for number, (times, raw, values) in columns.items():
        expected = _reference(policy, times, raw, values)
        series = got.get(number)
        n = 0 if series is None else len(series.times_ms)
        assert n == len(expected), schema().signals[number].vss
        if series is not None:
            assert series.times_ms.tolist() == times[expected].tolist()
            assert series.raw.tolist() == raw[expected].tolist()


def test_off_sends_nothing() -> None:
    assert _sample(SamplingConfig(default=SamplingPolicy("off"), heartbeat_s=0)) == {}


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 20_000), max_size=12))
def test_batch_boundaries_do_not_change_what_is_sent(cuts: list[int]) -> None:
    sampling = SamplingConfig(
        default=SamplingPolicy("deadband", deadband=1.0, min_interval_s=0.3, max_interval_s=4.0),
        heartbeat_s=0,
    )
    whole = _sample(sampling)
    parts = _sample(sampling, cuts)
    assert whole.keys() == parts.keys()
    for number, series in whole.items():
        assert parts[number].times_ms.tolist() == series.times_ms.tolist()
        assert parts[number].raw.tolist() == series.raw.tolist()


def test_rules_override_the_default_and_the_last_rule_wins() -> None:
    sampling = SamplingConfig(
        default=SamplingPolicy("off"),
        rules=(
            SamplingRule(("Vehicle.Speed", "Vehicle.TraveledDistance"), SamplingPolicy("all")),
            SamplingRule(("Vehicle.Trav*",), SamplingPolicy("interval", period_s=10.0)),
        ),
        heartbeat_s=0,
    )
    got = _sample(sampling)
    speed = schema().spec("Vehicle.Speed").number
    odometer = schema().spec("Vehicle.TraveledDistance").number
    assert set(got) == {speed, odometer}
    assert len(got[speed].times_ms) == len(_columns()[speed][0])
    assert len(got[odometer].times_ms) == 12  # 120 s of data, one per 10 s window


def test_a_rule_matching_no_signal_is_an_error_naming_it() -> None:
    sampling = SamplingConfig(rules=(SamplingRule(("Vehicle.Sped",), SamplingPolicy("all")),))
    with pytest.raises(
        SamplingError, match=r"sampling.rule\[0\].signals: pattern 'Vehicle.Sped' matches no"
    ):
        Sampler(schema(), decoder(), sampling)


def test_rule_problems_name_every_pattern_matching_no_signal() -> None:
    rules = (
        SamplingRule(("Vehicle.Speed", "Vehicle.Sped"), SamplingPolicy("all")),
        SamplingRule(("Vehicle.Nope.*",), SamplingPolicy("off")),
    )
    found = rule_problems(schema(), SamplingConfig(rules=rules))
    assert [(p.key, p.reason.split(" matches")[0]) for p in found] == [
        ("sampling.rule[0].signals", "pattern 'Vehicle.Sped'"),
        ("sampling.rule[1].signals", "pattern 'Vehicle.Nope.*'"),
    ]


def test_heartbeat_sends_the_latest_value_of_quiet_signals() -> None:
    # on_change: the odometer changes rarely in 120 s; the heartbeat every 30 s of data
    # time sends its latest sample although it did not change.
    sampling = SamplingConfig(default=SamplingPolicy("on_change"), heartbeat_s=30.0)
    without = _sample(SamplingConfig(default=SamplingPolicy("on_change"), heartbeat_s=0))
    got = _sample(sampling, cuts=list(range(0, 200_000, 500)))
    number = schema().spec("Vehicle.Service.DistanceToService").number
    extra = len(got[number].times_ms) - len(without[number].times_ms)
    assert 2 <= extra <= 4
    times = got[number].times_ms
    assert (np.diff(times) >= 0).all()


def test_times_going_backwards_are_held_and_counted() -> None:
    frames = urban_frames()
    parts = split(frames, [5000])
    sampler = Sampler(
        schema(), decoder(), SamplingConfig(default=SamplingPolicy("all"), heartbeat_s=0)
    )
    sampler.feed(decoder().decode(parts[1]))
    sampler.feed(decoder().decode(parts[0]))  # older frames after newer ones
    assert sampler.stats.clamped > 0
    for series in sampler.take():
        assert (np.diff(series.times_ms) >= 0).all()


def test_watched_signals_come_back_at_full_rate() -> None:
    speed = schema().spec("Vehicle.Speed").number
    sampler = Sampler(
        schema(), decoder(), SamplingConfig(default=SamplingPolicy("off")), watch=[speed]
    )
    watched = sampler.feed(decoder().decode(urban_frames()))
    times, raw, values = _columns()[speed]
    assert set(watched.signals.tolist()) == {speed}
    assert watched.times_ms.tolist() == times.tolist()
    assert watched.raw.tolist() == raw.tolist()
    assert np.allclose(watched.values, values)
    assert sampler.take() == ()


def test_alarms_count_samples_beyond_their_threshold() -> None:
    speed = schema().spec("Vehicle.Speed").number
    odometer = schema().spec("Vehicle.TraveledDistance").number
    sampler = Sampler(schema(), decoder(), SamplingConfig(default=SamplingPolicy("off")))
    sampler.alarm(speed, 10.0)
    sampler.alarm(speed, 50.0)  # the lower threshold stays
    watched = sampler.feed(decoder().decode(urban_frames()))
    _, _, values = _columns()[speed]
    assert watched.alarms == int((np.abs(values) > 10.0).sum()) > 0
    assert len(watched) == 0  # alarms do not make a signal watched
    quiet = Sampler(schema(), decoder(), SamplingConfig(default=SamplingPolicy("off")))
    quiet.alarm(odometer, 1e9)
    assert quiet.feed(decoder().decode(urban_frames())).alarms == 0
