"""Scenario kinds: what each one does, its fields, and which scenarios cannot share a drive.

A `Scenario` is one entry of a scenario file (``[[scenario]]``): a kind, a start time ``at``
in seconds from the start of the drive, and the kind's parameters, already checked against
`KINDS`. The simulator applies them (see `simulators.drive`); this module only describes and
checks them, so it is pure data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = ["KINDS", "KindSpec", "Param", "Scenario", "ScenarioKind"]

ParamValue = float | int | str
ScenarioKind = Literal["positive", "negative"]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a scenario kind; ``default`` None means required."""

    name: str
    type: type
    default: ParamValue | None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """A scenario kind.

    ``exclusive`` names a resource only one scenario may use at a time (``motion``: the
    vehicle's speed); ``window`` gives the seconds it holds it, from ``at`` and the parameters
    (``math.inf``: to the end of the drive).
    """

    name: str
    label: ScenarioKind
    description: str
    params: tuple[Param, ...]
    exclusive: Callable[[Mapping[str, ParamValue]], str | None]
    window: Callable[[float, Mapping[str, ParamValue]], tuple[float, float]]
    variant: str | None = None
    cycle: Literal["driving", "parking"] | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scheduled scenario. ``line`` and ``index`` (from 1) locate it in its file."""

    kind: str
    at: float
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    index: int = 0
    line: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scenario kind {self.kind!r}")
        spec = KINDS[self.kind]
        merged = {p.name: p.default for p in spec.params if p.default is not None}
        merged.update(self.params)
        object.__setattr__(self, "params", MappingProxyType(merged))

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    def window(self) -> tuple[float, float]:
        return self.spec.window(self.at, self.params)


def _terminal(at: float, _: Mapping[str, ParamValue]) -> tuple[float, float]:
    return at, math.inf


def _const(key: str | None) -> Callable[[Mapping[str, ParamValue]], str | None]:
    return lambda _: key


def _span(seconds: float) -> Callable[[float, Mapping[str, ParamValue]], tuple[float, float]]:
    return lambda at, _: (at, at + seconds)


_TYRES = ("FL", "FR", "RL", "RR")

_SPECS = (
    KindSpec(
        "crash",
        "positive",
        "a crash pulse of tens of g for about 100 ms; airbags deploy; the vehicle stops and "
        "stays; hazard lights on",
        (
            Param(
                "min_speed_kmh",
                float,
                40.0,
                5,
                150,
                doc="crash at the first moment at or "
                "after `at` when the vehicle is at least this fast",
            ),
            Param("pulse_ms", float, 80.0, 40, 200, doc="duration of the crash pulse"),
            Param("crash_type", str, "front", choices=("front", "side_left", "side_right")),
        ),
        _const("motion"),
        _terminal,
    ),
    KindSpec(
        "breakdown",
        "positive",
        "a critical DTC; the vehicle pulls over and stops on the road; hazard lights on",
        (
            Param("dtc", int, 0x0A9400, 1, 0xFFFFFF, doc="3-byte UDS DTC"),
            Param("severity", int, 3, 1, 3, doc="UDS severity class (3: check immediately)"),
            Param("source_ecu", int, 0x7E, 0, 255, doc="diagnostic address of the ECU"),
        ),
        _const("motion"),
        _terminal,
    ),
    KindSpec(
        "ev_out_of_charge",
        "positive",
        "the traction battery reaches 0 % state of charge; the vehicle coasts to a stop",
        (),
        _const("motion"),
        _terminal,
        variant="ev",
        cycle="driving",
    ),
    KindSpec(
        "slow_puncture",
        "positive",
        "one tyre loses a few kPa per hour",
        (
            Param("tyre", str, "FL", choices=_TYRES),
            Param("rate_kpa_per_h", float, 4.0, 0.5, 60),
        ),
        lambda p: f"tyre {p['tyre']}",
        _terminal,
    ),
    KindSpec(
        "lv_drain",
        "positive",
        "the 12 V battery voltage falls over hours while the vehicle is parked",
        (
            Param("rate_v_per_h", float, 0.35, 0.05, 3.0),
            Param("current_a", float, 0.8, 0.1, 20.0, doc="the parasitic drain current"),
        ),
        _const("lv"),
        _terminal,
        cycle="parking",
    ),
    KindSpec(
        "overheating",
        "positive",
        "engine coolant rises past 115 degC",
        (
            Param("peak_c", float, 122.0, 116, 140),
            Param("ramp_s", float, 300.0, 30, 3600, doc="seconds from the start to the peak"),
        ),
        _const("coolant"),
        _terminal,
        variant="combustion",
        cycle="driving",
    ),
    KindSpec(
        "service_due",
        "positive",
        "the odometer crosses the service interval: distance to service goes through 0",
        (),
        _const("service"),
        _terminal,
        cycle="driving",
    ),
    KindSpec(
        "hard_braking",
        "negative",
        "emergency braking at about 0.9 g to a stop, no crash, no airbag",
        (
            Param("decel_g", float, 0.9, 0.5, 1.1),
            Param("min_speed_kmh", float, 35.0, 20, 150),
        ),
        _const("motion"),
        _span(60.0),
        cycle="driving",
    ),
    KindSpec(
        "pothole",
        "negative",
        "short vertical acceleration spikes, front then rear axle",
        (
            Param("peak_g", float, 2.5, 0.5, 6.0),
            Param("min_speed_kmh", float, 20.0, 5, 150),
        ),
        _const(None),
        _span(2.0),
        cycle="driving",
    ),
    KindSpec(
        "cold_morning",
        "negative",
        "cold tyres read low pressure at the start and recover as they warm",
        (
            Param("ambient_c", float, -8.0, -40, 5),
            Param("inflated_at_c", float, 20.0, 5, 35, doc="temperature the tyres were set at"),
        ),
        _const("ambient"),
        _terminal,
        cycle="driving",
    ),
    KindSpec(
        "jump_start",
        "negative",
        "a flat 12 V battery is jump-started: a short deep voltage dip, then recovery",
        (
            Param("dip_v", float, 9.6, 6.0, 11.5),
            Param("dip_s", float, 0.5, 0.1, 5.0),
            Param("before_v", float, 11.6, 10.0, 12.4, doc="voltage in the minute before"),
        ),
        _const("lv"),
        lambda at, p: (at - 60.0, at + float(p["dip_s"])),
    ),
    KindSpec(
        "gnss_dropout",
        "negative",
        "the GNSS fix is lost for a few seconds (tunnel, multipath)",
        (Param("duration_s", float, 8.0, 1.0, 120.0),),
        _const("gnss"),
        lambda at, p: (at, at + float(p["duration_s"])),
    ),
)

KINDS: Mapping[str, KindSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
