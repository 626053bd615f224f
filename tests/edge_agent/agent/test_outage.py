"""The agent against a real Mosquitto that goes away for ten minutes of a simulated drive."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from edge_agent.agent import Agent
from edge_agent.config import (
    AgentConfig,
    MqttConfig,
    OutboxConfig,
    SamplingConfig,
    SamplingPolicy,
    TelemetryConfig,
    VehicleConfig,
)
from edge_agent.frames import FrameBatch
from edge_agent.sampling import Sampler
from edge_agent.wire import decode_telemetry, peek
from tests.fixtures.fix_mqtt import OwnBroker

from .._drive import catalogue, decoder, drive_frames, schema, wait_until
from ._mqtt import Subscriber

STEP_S = 0.5  # seconds of drive per processed batch


def _slices(frames: FrameBatch, start: float, end: float) -> list[FrameBatch]:
    t0 = float(frames.timestamps[0])
    out = []
    edges = np.arange(start, end + 1e-9, STEP_S) + t0
    for a, b in itertools.pairwise(edges):
        i, j = np.searchsorted(frames.timestamps, [a, b])
        if j > i:
            out.append(frames.slice(int(i), int(j)))
    return out


def _config(port: int, tmp_path: Path) -> AgentConfig:
    return AgentConfig(
        vehicle=VehicleConfig(id="outage-1"),
        sampling=SamplingConfig(
            default=SamplingPolicy("deadband", deadband=0.5, max_interval_s=5.0)
        ),
        telemetry=TelemetryConfig(batch_interval_s=10.0),
        mqtt=MqttConfig(host="127.0.0.1", port=port, reconnect_min_s=0.1, reconnect_max_s=0.5),
        outbox=OutboxConfig(path=tmp_path / "outbox.sqlite"),
    )


def test_ten_minutes_without_broker_lose_nothing_and_send_nothing_twice(
    own_broker: OwnBroker, tmp_path: Path
) -> None:
    frames = drive_frames(20 * 60.0, cycle="wltp", seed=2)
    config = _config(own_broker.port, tmp_path)
    topic = config.topic("telemetry")
    subscriber = Subscriber(own_broker.port, [topic])
    agent = Agent(config, catalogue=catalogue())
    reference = Sampler(schema(), decoder(), config.sampling)
    try:
        agent.start()
        assert agent.link is not None and agent.link.wait_connected(10)
        for part in _slices(frames, 0, 5 * 60):
            agent.process(part)
            reference.feed(decoder().decode(part))
        assert wait_until(lambda: agent.outbox.stats().records == 0)
        before = agent.status().batches

        own_broker.stop()
        for part in _slices(frames, 5 * 60, 15 * 60):
            agent.process(part)
            reference.feed(decoder().decode(part))
        queued = agent.outbox.stats().records
        assert queued >= 55  # ten minutes of 10 s batches waited in the outbox
        assert agent.status().batches - before == queued
        assert not agent.link.stats.connected

        own_broker.start()
        for part in _slices(frames, 15 * 60, 20 * 60 + 1):
            agent.process(part)
            reference.feed(decoder().decode(part))
    finally:
        agent.close(drain_s=30)
    total = agent.status().batches
    assert agent.status().outbox_records == 0
    received = subscriber.wait_for(topic, total)
    subscriber.close()

    sequences = [peek(m.payload).sequence for m in received]
    assert sequences == list(range(total))  # every batch, in order, none twice

    got: dict[int, list[np.ndarray]] = {}
    for m in received:
        for series in decode_telemetry(m.payload, schema()).series:
            got.setdefault(series.signal, []).append(series.times_ms)
            got.setdefault(-1 - series.signal, []).append(series.raw)
    expected = {s.signal: s for s in reference.take()}
    assert set(expected) == {k for k in got if k >= 0}
    for number, series in expected.items():
        assert np.concatenate(got[number]).tolist() == series.times_ms.tolist()
        assert np.concatenate(got[-1 - number]).tolist() == series.raw.tolist()
