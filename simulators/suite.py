"""A labelled scenario suite: many short drives, each its own vehicle, with known ground truth.

::

    suite = build_suite(n_drives=120, seed=0)        # pure data, nothing simulated yet
    for drive in suite:
        observed = observe_drive(drive, agent_config)  # simulate, then the edge agent
        ...                                         # observed.messages: what the cloud decodes

Positive drives carry one positive scenario (every positive kind in turn, on a vehicle and
cycle it fits, parameters drawn within the kind's range so that it manifests before the drive
ends), sometimes after a hard negative. Hard-negative drives carry only negative kinds. Each
drive is as short as its scenario needs: a crash a few minutes, a slow puncture or a draining
12 V battery the hours its parameters take to show.

`observe_drive` sends the drive's frames through the edge agent's own pipeline offline
(`edge_agent.agent.Agent.process`: decoder, sampler, crash detector, captures and the wire
codec into the durable outbox, no broker) and decodes what the agent put in its outbox as the
cloud does. The edge agent is imported on first use (it loads numba).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .drive import Drive, simulate
from .labels import Label
from .scenarios import KINDS, ParamValue, Scenario
from .vehicle import VehicleConfig

if TYPE_CHECKING:
    from dbc import Catalogue
    from edge_agent.config import AgentConfig, Propulsion
    from edge_agent.outbox import Record

__all__ = [
    "NEGATIVE_KINDS",
    "POSITIVE_KINDS",
    "AgentRun",
    "ObservedDrive",
    "ObservedEvent",
    "Outgoing",
    "Published",
    "SuiteDrive",
    "build_suite",
    "observe_drive",
    "run_agent",
    "suite_kinds",
]

log = logging.getLogger(__name__)

POSITIVE_KINDS = tuple(k for k, spec in KINDS.items() if spec.label == "positive")
NEGATIVE_KINDS = tuple(k for k, spec in KINDS.items() if spec.label == "negative")

_START = 1_767_225_600.0  # 2026-01-01 00:00 UTC; drive i starts i days later
_HOUR = 3600.0
# The fastest a drive cycle surely gets after its first minutes (km/h), for speed triggers.
_SURE_SPEED = {"urban": 35.0, "wltp": 40.0, "highway": 90.0}


@dataclass(frozen=True, slots=True)
class SuiteDrive:
    """One drive of the suite: its vehicle (the VIN is the vehicle id) and scenarios."""

    config: VehicleConfig
    scenarios: tuple[Scenario, ...]

    @property
    def vehicle_id(self) -> str:
        return self.config.vin

    @property
    def hard_negative(self) -> bool:
        """Whether every scenario of the drive is a hard negative."""
        return all(s.spec.label == "negative" for s in self.scenarios)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.scenarios)

    def simulate(self) -> Drive:
        return simulate(self.config, self.scenarios, source=self.vehicle_id)


@dataclass(frozen=True, slots=True)
class ObservedEvent:
    """A vehicle event as the cloud stores it: time (ms), kind, the wire JSON document."""

    time_ms: int
    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True, eq=False)
class Published:
    """One message the agent published, decoded as the cloud decodes it: VSS path to
    (times in ms, physical values), or events. ``capture`` names a triggered capture."""

    signals: Mapping[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )
    events: tuple[ObservedEvent, ...] = ()
    capture: str | None = None

    @property
    def samples(self) -> int:
        return sum(len(t) for t, _ in self.signals.values())


@dataclass(frozen=True, slots=True, eq=False)
class ObservedDrive:
    """A drive's ground truth and the agent's messages, in the order the outbox drains them."""

    drive: SuiteDrive
    labels: tuple[Label, ...]
    messages: tuple[Published, ...]
    frames: int

    @property
    def vehicle_id(self) -> str:
        return self.drive.vehicle_id

    @property
    def end_ms(self) -> int:
        return round((self.drive.config.start_time + self.drive.config.duration) * 1000)


# -- the suite ----------------------------------------------------------------------------


def build_suite(
    n_drives: int = 120, seed: int = 0, *, negative_share: float = 0.36
) -> tuple[SuiteDrive, ...]:
    """A deterministic suite of ``n_drives`` drives (at least 100 for the acceptance; fewer
    make a quick subset), ``negative_share`` of them (at least a third) hard negatives.

    Positive kinds take turns, so any ``n_drives`` of at least 2x their number covers each
    twice; hard negatives are spread through the suite.
    """
    if n_drives < 1:
        raise ValueError(f"n_drives must be at least 1, not {n_drives}")
    if not 1 / 3 <= negative_share < 1:
        raise ValueError(f"negative_share must be 1/3 to 1, not {negative_share}")
    rng = np.random.default_rng([seed, 0x5017E])
    negatives = max(math.ceil(n_drives * negative_share), 1 if n_drives > 1 else 0)
    slots = np.zeros(n_drives, bool)
    slots[np.linspace(0, n_drives - 1, negatives).round().astype(int)] = True
    drives: list[SuiteDrive] = []
    positive = 0
    for i in range(n_drives):
        vin = f"C2CSVT{seed % 1000:03d}{i:08d}"
        start = _START + 86_400.0 * i
        if slots[i]:
            drives.append(_negative_drive(rng, vin, start, i))
        else:
            kind = POSITIVE_KINDS[positive % len(POSITIVE_KINDS)]
            positive += 1
            drives.append(_positive_drive(rng, kind, vin, start, i))
    return tuple(drives)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _round(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def _config(
    rng: np.random.Generator, vin: str, start: float, index: int, **fields: Any
) -> VehicleConfig:
    base: dict[str, Any] = {
        "vin": vin,
        "variant": "ev" if rng.random() < 0.5 else "combustion",
        "cycle": str(rng.choice(("urban", "wltp", "highway"))),
        "seed": int(rng.integers(0, 2**31)) ^ index,
        "start_time": start,
        "ambient_c": _round(rng.uniform(-5.0, 30.0), 1),
        "initial_soc": _round(rng.uniform(25.0, 90.0), 1),
        "initial_odometer_km": _round(rng.uniform(500.0, 150_000.0), 1),
        "distance_to_service_km": _round(rng.uniform(2_500.0, 30_000.0), 1),
    }
    base.update(fields)
    return VehicleConfig(**base)


def _scenario(kind: str, at: float, index: int, **params: ParamValue) -> Scenario:
    return Scenario(kind, _round(at, 1), params, index=index)


def _positive_drive(
    rng: np.random.Generator, kind: str, vin: str, start: float, index: int
) -> SuiteDrive:
    """One positive scenario, maybe after a hard negative, and the drive it needs."""
    spec = KINDS[kind]
    fields: dict[str, Any] = {}
    if spec.variant is not None:
        fields["variant"] = spec.variant
    if spec.cycle == "parking" or (kind == "slow_puncture" and rng.random() < 0.3):
        fields["cycle"] = "parking"
    config = _config(rng, vin, start, index, **fields)
    at = _round(rng.uniform(90.0, 600.0), 1)
    scenarios: list[Scenario] = []
    if config.driving and rng.random() < 0.35:  # a hard negative first, well before
        scenarios.append(_early_negative(rng, config, at))
    if kind == "crash":
        low = min(_SURE_SPEED[config.cycle], 15.0)
        speed = _round(rng.uniform(low, _SURE_SPEED[config.cycle]), 1)
        pulse = _round(rng.uniform(40.0, 200.0), 0)
        side = str(rng.choice(("front", "side_left", "side_right")))
        main = _scenario(kind, at, 0, min_speed_kmh=speed, pulse_ms=pulse, crash_type=side)
        length = at + 360.0
    elif kind == "breakdown":
        dtc = int(rng.integers(0x010000, 0xFFFFFF))
        ecu = int(rng.integers(0x01, 0xFF))
        main = _scenario(kind, at, 0, dtc=dtc, severity=3, source_ecu=ecu)
        length = at + 480.0
    elif kind == "ev_out_of_charge":
        main = _scenario(kind, at, 0)
        length = at + 420.0
    elif kind == "slow_puncture":
        tyre = str(rng.choice(("FL", "FR", "RL", "RR")))
        rate = _round(_log_uniform(rng, 8.0, 60.0), 2)
        main = _scenario(kind, at, 0, tyre=tyre, rate_kpa_per_h=rate)
        # the tyre must lose well over the rule's 20 kPa against its axle partner
        length = at + 34.0 / rate * _HOUR + 900.0
    elif kind == "lv_drain":
        rate = _round(_log_uniform(rng, 0.3, 3.0), 3)
        current = _round(_log_uniform(rng, 0.1, 20.0), 2)
        main = _scenario(kind, at, 0, rate_v_per_h=rate, current_a=current)
        # from 12.65 V resting to under 11.9 V on the 10-minute mean, then the rule's 10 min
        length = at + 0.9 / rate * _HOUR + 1800.0
    elif kind == "overheating":
        peak = _round(rng.uniform(116.5, 140.0), 1)
        ramp = _round(_log_uniform(rng, 30.0, 1800.0), 0)
        main = _scenario(kind, at, 0, peak_c=peak, ramp_s=ramp)
        length = at + ramp + 420.0
    elif kind == "service_due":
        main = _scenario(kind, at, 0)
        length = at + 420.0
    else:  # pragma: no cover - POSITIVE_KINDS is KINDS' positive kinds
        raise ValueError(f"no suite drive for {kind!r}")
    scenarios.append(main)
    if length > _HOUR and config.variant == "ev" and config.driving:
        # hours of driving would empty the battery: an unlabelled out-of-charge episode
        config = dataclasses.replace(config, cycle="urban", initial_soc=95.0)
    indexed = tuple(dataclasses.replace(s, index=k + 1) for k, s in enumerate(scenarios))
    return SuiteDrive(dataclasses.replace(config, duration=_round(length, 0)), indexed)


def _early_negative(rng: np.random.Generator, config: VehicleConfig, before: float) -> Scenario:
    """A hard negative in the first minute of a drive (its motion is over long before)."""
    kind = str(rng.choice(("pothole", "gnss_dropout", "hard_braking")))
    at = rng.uniform(5.0, max(before - 150.0, 6.0))
    if kind == "hard_braking":
        return _scenario(
            kind, min(at, 20.0), 0, decel_g=_round(rng.uniform(0.5, 1.1)), min_speed_kmh=20.0
        )
    if kind == "pothole":
        return _scenario(kind, at, 0, peak_g=_round(rng.uniform(0.5, 6.0)), min_speed_kmh=5.0)
    return _scenario(kind, at, 0, duration_s=_round(rng.uniform(1.0, 60.0), 1))


def _negative_drive(rng: np.random.Generator, vin: str, start: float, index: int) -> SuiteDrive:
    """One to three hard negatives, a few minutes apart, on a drive or (jump start) parked."""
    choice = int(rng.integers(0, 5))
    if choice == 0:  # a flat battery jump-started, on a parked vehicle or as the drive starts
        cycle = "parking" if rng.random() < 0.5 else str(rng.choice(("urban", "wltp")))
        config = _config(rng, vin, start, index, cycle=cycle)
        at = _round(rng.uniform(70.0, 300.0), 1)
        jump = _scenario(
            "jump_start",
            at,
            0,
            dip_v=_round(rng.uniform(6.0, 11.5)),
            dip_s=_round(rng.uniform(0.1, 5.0)),
            before_v=_round(rng.uniform(10.0, 12.4)),
        )
        scenarios = [jump]
        if rng.random() < 0.5:
            scenarios.append(_scenario("gnss_dropout", at + 60.0, 0, duration_s=20.0))
        length = at + rng.uniform(1500.0, 2700.0)
    else:
        config = _config(rng, vin, start, index)
        scenarios = []
        t = 0.0
        if rng.random() < 0.4:
            # a cold morning: tyres set in a warm garage, read low until they warm (a tyre
            # set at 35 degC and driven at -40 degC is really under-inflated: not drawn)
            ambient = _round(rng.uniform(-25.0, 5.0), 1)
            scenarios.append(
                _scenario(
                    "cold_morning",
                    0.0,
                    0,
                    ambient_c=ambient,
                    inflated_at_c=_round(rng.uniform(10.0, 25.0), 1),
                )
            )
        for _ in range(int(rng.integers(1, 4))):
            t += rng.uniform(60.0, 240.0)
            kind = str(rng.choice(("hard_braking", "pothole", "gnss_dropout")))
            speed = _round(rng.uniform(20.0, _SURE_SPEED[config.cycle]), 1)
            if kind == "hard_braking":
                scenarios.append(
                    _scenario(
                        kind, t, 0, decel_g=_round(rng.uniform(0.5, 1.1)), min_speed_kmh=speed
                    )
                )
                t += 120.0  # motion is held 60 s from `at`; the braking may come later
            elif kind == "pothole":
                scenarios.append(
                    _scenario(kind, t, 0, peak_g=_round(rng.uniform(0.5, 6.0)), min_speed_kmh=speed)
                )
            else:
                duration = _round(rng.uniform(1.0, 120.0), 1)
                scenarios.append(_scenario(kind, t, 0, duration_s=duration))
                t += duration
        length = t + rng.uniform(300.0, 900.0)
    indexed = tuple(dataclasses.replace(s, index=k + 1) for k, s in enumerate(scenarios))
    return SuiteDrive(dataclasses.replace(config, duration=_round(length, 0)), indexed)


# -- through the edge agent ---------------------------------------------------------------


def observe_drive(
    drive: SuiteDrive,
    agent_config: AgentConfig,
    *,
    catalogue: Catalogue | None = None,
    work_dir: str | Path | None = None,
) -> ObservedDrive:
    """Simulate ``drive`` and run its frames through the edge agent configured as
    ``agent_config`` (vehicle identity and outbox path replaced): what it publishes, decoded.

    See `run_agent` for how the frames reach the agent.
    """
    from dbc import demo_catalogue
    from edge_agent.wire import WireSchema

    catalogue = catalogue or demo_catalogue()
    run = run_agent(drive, agent_config, catalogue=catalogue, work_dir=work_dir)
    schema = WireSchema.from_catalogue(catalogue)
    messages = tuple(_decode(r.payload, schema) for r in run.records)
    return ObservedDrive(drive, run.labels, messages, run.frames)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the agent put in its outbox, as it would go to the broker: ``ready_s`` is
    the drive's clock (epoch seconds) when it was ready, the last frame the agent had read."""

    ready_s: float
    topic: str
    payload: bytes
    qos: int


@dataclass(frozen=True, slots=True, eq=False)
class AgentRun:
    """A drive's ground truth and the agent's outgoing messages, in drain order."""

    labels: tuple[Label, ...]
    records: tuple[Outgoing, ...]
    frames: int


def run_agent(
    drive: SuiteDrive,
    agent_config: AgentConfig,
    *,
    catalogue: Catalogue | None = None,
    work_dir: str | Path | None = None,
) -> AgentRun:
    """Simulate ``drive`` and run its frames through the edge agent offline, at full speed.

    Frames go to `Agent.process` in batches of the configuration's ``batching.max_frames``
    (a log replayed as fast as possible); after each batch the outbox is drained in its own
    order (crash events first), as the MQTT link would, and the rest is read from the outbox
    file after the agent closed.
    """
    from dbc import demo_catalogue
    from edge_agent.agent import Agent
    from edge_agent.config import OutboxConfig, StatusConfig
    from edge_agent.config import VehicleConfig as AgentVehicle
    from edge_agent.outbox import Outbox

    from .traffic import TrafficGenerator

    catalogue = catalogue or demo_catalogue()
    simulated = drive.simulate()
    propulsion: Propulsion = "electric" if drive.config.variant == "ev" else "combustion"
    end_s = drive.config.start_time + drive.config.duration
    with tempfile.TemporaryDirectory(prefix="c2c-suite-", dir=work_dir) as tmp:
        outbox = Path(tmp) / "outbox.sqlite"
        config = dataclasses.replace(
            agent_config,
            vehicle=AgentVehicle(drive.vehicle_id, drive.vehicle_id, propulsion),
            outbox=OutboxConfig(outbox, agent_config.outbox.max_bytes),
            status=StatusConfig(None),
        )
        agent = Agent(config, catalogue=catalogue, connect=False)
        records: list[Outgoing] = []
        frames = 0
        try:
            for batch in _frame_batches(
                TrafficGenerator(simulated.trace, catalogue.database), config.batching.max_frames
            ):
                frames += len(batch)
                agent.process(batch)
                ready = agent.outbox.pending(1_000_000)
                agent.outbox.ack(r.id for r in ready)
                at = float(batch.timestamps[-1])
                records.extend(_outgoing(at, r) for r in ready)
        finally:
            agent.close(drain_s=0.0)
        with Outbox(outbox) as rest:  # the last batch and captures, put as the agent closed
            records.extend(_outgoing(end_s, r) for r in rest.pending(1_000_000))
    log.debug("%s: %d frames, %d messages", drive.vehicle_id, frames, len(records))
    return AgentRun(simulated.labels, tuple(records), frames)


def _outgoing(ready_s: float, record: Record) -> Outgoing:
    return Outgoing(ready_s, record.topic, record.payload, record.qos)


def _frame_batches(traffic: Any, max_frames: int) -> Iterator[Any]:
    for chunk in traffic.batches(chunk_seconds=60.0):
        for start in range(0, len(chunk), max_frames):
            yield chunk.slice(start, min(start + max_frames, len(chunk)))


def _decode(payload: bytes, schema: Any) -> Published:
    from edge_agent.wire import PayloadKind, decode_event, decode_telemetry, peek

    header = peek(payload)
    if header.kind is PayloadKind.EVENT:
        event = decode_event(payload)
        document = json.loads(payload[2:].decode("utf-8"))  # the wire JSON the cloud stores
        return Published(events=(ObservedEvent(event.time_ms, "crash", document),))
    batch = decode_telemetry(payload, schema)
    signals = {
        schema.signal(s.signal).vss: (
            np.asarray(s.times_ms, np.int64),
            schema.physical(s.signal, s.raw),
        )
        for s in batch.series
        if len(s.raw)
    }
    capture = batch.capture.name if batch.capture is not None else None
    return Published(signals=signals, capture=capture)


def suite_kinds(drives: Sequence[SuiteDrive]) -> dict[str, int]:
    """How many drives carry each scenario kind."""
    counts: dict[str, int] = {}
    for d in drives:
        for kind in d.kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return counts
