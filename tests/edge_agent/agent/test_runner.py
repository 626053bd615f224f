"""The agent on a user's own catalogue (docs/signal-map.md): it starts without the demo
vehicle's crash signals when crash detection is off, refuses to start naming every path its
map lacks when it is on, and detects crashes with the signals the map has."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import can
import pytest

from dbc import Catalogue
from edge_agent.agent import Agent, messages_to_batch
from edge_agent.config import AgentConfig, ConfigValueError, load_config
from edge_agent.frames import FrameBatch

from .._own_catalogue import write_own_catalogue


def _config(tmp_path: Path, crash: Mapping[str, object]) -> AgentConfig:
    overrides: dict[str, object] = {
        "vehicle.id": "abs-1",
        "can.interface": "virtual",
        "catalogue.map": write_own_catalogue(tmp_path),
        "outbox.path": tmp_path / "outbox.sqlite",
    }
    overrides.update({f"crash.{key}": value for key, value in crash.items()})
    return load_config(None, env={}, overrides=overrides)


def _frames(catalogue: Catalogue, lateral_g: list[float]) -> FrameBatch:
    """The IMU's frame every 10 ms with these lateral accelerations, and wheel speeds."""
    db = catalogue.database
    imu, wheels = db.get_message_by_name("MM5_10_TX1"), db.get_message_by_name("BREMSE_33")
    messages = []
    speeds = wheels.encode({"whlspeed_FL": 10.0, "whlspeed_FR": 10.0})
    for i, g in enumerate(lateral_g):
        t = 1_700_000_000.0 + i * 0.01
        for offset, message, data in (
            (0.0, imu, imu.encode({"Yaw_Rate": 0.0, "AY1": g})),
            (0.001, wheels, speeds),
        ):
            messages.append(
                can.Message(
                    timestamp=t + offset,
                    arbitration_id=message.frame_id,
                    is_extended_id=False,
                    data=data,
                )
            )
    return messages_to_batch(messages)


def _run(agent: Agent, frames: FrameBatch) -> int:
    try:
        return sum(len(agent.process(frames.slice(i, i + 50))) for i in range(0, len(frames), 50))
    finally:
        agent.close(drain_s=0)


def test_with_crash_detection_off_no_crash_signal_is_needed(tmp_path: Path) -> None:
    agent = Agent(_config(tmp_path, {"enabled": False}), connect=False)
    assert agent.crash is None
    pulse = [0.1] * 100 + [4.1] * 5 + [0.1] * 100  # 40.2 m/s^2: a crash, were it on
    assert _run(agent, _frames(agent.catalogue, pulse)) == 0
    status = agent.status()
    assert status.frames_decoded == status.frames_in == 410 and status.events == 0


def test_with_crash_detection_on_every_missing_path_is_named(tmp_path: Path) -> None:
    config = _config(tmp_path, {})
    with pytest.raises(ConfigValueError) as caught:
        Agent(config, connect=False)
    assert [p.key for p in caught.value.problems] == [
        "crash.airbag_signal",
        "crash.severity_signal",
        "crash.acceleration_signals",
    ]
    assert "'Vehicle.Private.Crash.AirbagDeployed' is not a VSS path" in str(caught.value)


def test_crash_detection_without_an_airbag_signal(tmp_path: Path) -> None:
    crash = {
        "airbag_signal": "",
        "severity_signal": "",
        "acceleration_signals": ["Vehicle.Acceleration.Lateral"],
    }
    agent = Agent(_config(tmp_path, crash), connect=False)
    assert agent.crash is not None
    pulse = [0.1] * 100 + [4.1] * 5 + [0.1] * 100
    assert _run(agent, _frames(agent.catalogue, pulse)) == 1
