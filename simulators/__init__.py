"""Vehicle CAN traffic: a simulated vehicle with labelled scenarios, and log replay.

>>> drive = simulate(VehicleConfig(variant="ev", cycle="urban", duration=600, seed=1),
...                  load_scenario_file("crash.toml").scenarios)
>>> traffic = TrafficGenerator(drive.trace, demo_catalogue().database)
>>> write_log("drive.log", traffic.batches())
>>> write_labels("drive.labels.jsonl", drive.labels)

The vehicle model (`simulators.vehicle`, `simulators.drive`) is pure: a configuration and
scenarios in, time series and labels out. Frames are encoded by a vectorised encoder of our
own (`FrameEncoder`); logs and buses are the edges (`write_log`, `send_frames`,
`replay_log`). File formats: docs/simulator.md.

`build_suite` makes a labelled scenario suite of many drives and `observe_drive` runs one
through the edge agent's pipeline offline (``simulators.suite``; it imports the agent on first
use). `Fleet` (``simulators.fleet``, imported on first use: it needs paho-mqtt) is a load generator
of many simulated vehicles publishing telemetry to an MQTT broker. `simulators.socketpair`
(imported on its own) is python-can's SocketCAN bus over a Unix socket pair, for machines
without a kernel CAN stack.

Errors::

    SimulatorError          a simulation or replay cannot run as asked (permanent)
     ├── ScenarioError      a scenario file or scenario is wrong (path, line, field)
     ├── ReplayError        a log cannot be replayed (unreadable log)
     └── FleetError         a fleet cannot run as configured (options, credentials, broker)
"""

from typing import TYPE_CHECKING, Any

from .candump import format_candump, write_candump
from .drive import Drive, check_scenarios, simulate
from .encoder import FrameEncoder, MessageCodec
from .errors import FleetError, ReplayError, ScenarioError, SimulatorError
from .labels import Label, read_labels, write_labels
from .outputs import SendStats, frame_messages, send_frames, write_log
from .replay import replay_log
from .scenario_file import ScenarioFile, load_scenario_file, parse_duration, parse_scenarios
from .scenarios import KINDS, Scenario
from .suite import ObservedDrive, SuiteDrive, build_suite, observe_drive
from .traffic import TrafficGenerator
from .vehicle import Trace, VehicleConfig

if TYPE_CHECKING:
    from .fleet import Fleet, FleetConfig, FleetStats

_FLEET = ("Fleet", "FleetConfig", "FleetStats")

__all__ = [
    "KINDS",
    "Drive",
    "Fleet",
    "FleetConfig",
    "FleetError",
    "FleetStats",
    "FrameEncoder",
    "Label",
    "MessageCodec",
    "ObservedDrive",
    "ReplayError",
    "Scenario",
    "ScenarioError",
    "ScenarioFile",
    "SendStats",
    "SimulatorError",
    "SuiteDrive",
    "Trace",
    "TrafficGenerator",
    "VehicleConfig",
    "build_suite",
    "check_scenarios",
    "format_candump",
    "frame_messages",
    "load_scenario_file",
    "observe_drive",
    "parse_duration",
    "parse_scenarios",
    "read_labels",
    "replay_log",
    "send_frames",
    "simulate",
    "write_candump",
    "write_labels",
    "write_log",
]


def __getattr__(name: str) -> Any:
    if name in _FLEET:
        from . import fleet

        return getattr(fleet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
