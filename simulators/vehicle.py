"""The vehicle model: configuration, the simulated time series, and the physics underneath.

Everything is a NumPy array on a 10 ms grid. Kinematics come first (speed from a drive cycle,
then acceleration as its derivative, distance as its integral, heading from the road's
curvature along the distance, position from speed and heading); the powertrain, thermal and
electrical models follow from them. First-order lags (temperatures) are stepped once a second
and interpolated back, the only loops, a few thousand steps per simulated hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from ._types import BoolArray, FloatArray
from .errors import SimulatorError

__all__ = ["DT", "ActiveDtc", "Trace", "VehicleConfig"]

#: The simulation step, seconds.
DT = 0.01

Variant = Literal["ev", "combustion"]

# Ignition (VSS LowVoltageSystemState) and gear (VSS SelectedGear) codes, as in the demo DBC.
LOCK, OFF, ACC, ON, START = 0, 1, 2, 3, 4
NEUTRAL, PARK, DRIVE = 0, 126, 127

_EARTH_RADIUS = 6_371_000.0
_G = 9.80665


@dataclass(frozen=True, slots=True)
class VehicleConfig:
    """One vehicle and one drive. ``duration`` in seconds; ``start_time`` in epoch seconds."""

    vin: str = "C2CDEM00000000001"
    variant: Variant = "ev"
    cycle: str = "urban"
    duration: float = 600.0
    seed: int = 0
    start_time: float = 1_700_000_000.0
    ambient_c: float = 15.0
    initial_soc: float = 80.0
    initial_fuel: float = 70.0
    initial_odometer_km: float = 12_345.6
    distance_to_service_km: float = 4_000.0
    days_to_service: float = 120.0
    plugged_in: bool = False
    charge_limit: float = 90.0
    regen: bool = True
    latitude: float = 48.1374
    longitude: float = 11.5755

    def __post_init__(self) -> None:
        from ._cycles import CYCLES

        if self.variant not in ("ev", "combustion"):
            raise SimulatorError(f"variant must be 'ev' or 'combustion', not {self.variant!r}")
        if self.cycle not in CYCLES:
            raise SimulatorError(f"cycle must be one of {', '.join(CYCLES)}, not {self.cycle!r}")
        if not (1.0 <= self.duration <= 7 * 86400):
            raise SimulatorError(f"duration must be 1 s to 7 days, not {self.duration} s")
        if not (0.0 <= self.initial_soc <= 100.0 and 50.0 <= self.charge_limit <= 100.0):
            raise SimulatorError("initial_soc must be 0-100 % and charge_limit 50-100 %")
        if self.plugged_in and (self.cycle != "parking" or self.variant != "ev"):
            raise SimulatorError("plugged_in needs an ev variant on the parking cycle")

    @property
    def driving(self) -> bool:
        return self.cycle != "parking"


@dataclass(frozen=True, slots=True)
class ActiveDtc:
    """A diagnostic trouble code active from ``start`` (seconds from the drive's start)."""

    code: int
    severity: int
    source_ecu: int
    start: float
    status: int = 0x09  # testFailed | confirmedDTC


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """A simulated drive: ``t`` seconds from the start, and one array per channel.

    Channels named ``Message.Signal`` hold that DBC signal's physical value; the others are
    physics in SI units (``speed_mps``, ``accel_mps2``, ``distance_m``, ``heading_deg``,
    ``yaw_rate``, ``soc_pct``, ...) and flags (``regen``, ``charging``: 1.0 or 0.0).
    """

    config: VehicleConfig
    t: FloatArray
    channels: Mapping[str, FloatArray]
    dtcs: tuple[ActiveDtc, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", MappingProxyType(dict(self.channels)))

    @property
    def dt(self) -> float:
        return DT

    def __getitem__(self, name: str) -> FloatArray:
        return self.channels[name]

    def index(self, seconds: float) -> int:
        """The sample at ``seconds`` from the start (clamped to the drive)."""
        return int(min(max(round(seconds / DT), 0), len(self.t) - 1))


def time_grid(duration: float) -> FloatArray:
    return np.arange(round(duration / DT) + 1, dtype=np.float64) * DT


def lag(
    target: FloatArray, initial: float, tau: FloatArray | float, step: float = 1.0
) -> FloatArray:
    """A first-order lag of ``target`` (sampled every DT), stepped every ``step`` seconds."""
    stride = max(1, round(step / DT))
    coarse = target[::stride]
    taus = np.broadcast_to(np.asarray(tau, np.float64), target.shape)[::stride]
    alpha = 1.0 - np.exp(-step / taus)
    out = np.empty(len(coarse))
    y = initial
    for i in range(len(coarse)):
        out[i] = y
        y += float(alpha[i]) * (float(coarse[i]) - y)
    result: FloatArray = np.interp(np.arange(len(target)), np.arange(len(coarse)) * stride, out)
    return result


def integrate(values: FloatArray) -> FloatArray:
    """Cumulative trapezoidal integral over the DT grid, starting at 0."""
    out = np.empty_like(values)
    out[0] = 0.0
    np.cumsum((values[1:] + values[:-1]) * (DT / 2.0), out=out[1:])
    return out


def road_heading(
    cycle: str, distance: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Heading (radians, clockwise from north) and curvature (1/m) along the distance driven.

    The road is straight stretches and constant-radius bends; heading is piecewise linear in
    distance, so yaw rate is curvature times speed.
    """
    total = float(distance[-1]) + 1.0
    straight, radius = {
        "urban": ((60.0, 400.0), (40.0, 120.0)),
        "wltp": ((150.0, 1200.0), (200.0, 900.0)),
        "highway": ((500.0, 3000.0), (800.0, 3000.0)),
    }.get(cycle, ((100.0, 500.0), (60.0, 200.0)))
    s_knots, h_knots = [0.0], [rng.uniform(0.0, 2.0 * math.pi)]
    s, h = 0.0, h_knots[0]
    while s < total:
        s += rng.uniform(*straight)
        s_knots.append(s)
        h_knots.append(h)
        r = rng.uniform(*radius)
        angle = math.radians(rng.uniform(15.0, 90.0)) * rng.choice((-1.0, 1.0))
        s += abs(angle) * r
        h += angle
        s_knots.append(s)
        h_knots.append(h)
    heading = np.interp(distance, s_knots, h_knots)
    slopes = np.diff(h_knots) / np.maximum(np.diff(s_knots), 1e-9)
    segment = np.clip(np.searchsorted(s_knots, distance, side="right") - 1, 0, len(slopes) - 1)
    curvature: FloatArray = slopes[segment]
    return heading, curvature


def position(
    config: VehicleConfig, speed: FloatArray, heading: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Latitude and longitude (degrees) from speed and heading, dead-reckoned on the grid."""
    north = integrate(speed * np.cos(heading))
    east = integrate(speed * np.sin(heading))
    lat0 = math.radians(config.latitude)
    lat = config.latitude + np.degrees(north / _EARTH_RADIUS)
    lon = config.longitude + np.degrees(east / (_EARTH_RADIUS * math.cos(lat0)))
    return lat, lon


@dataclass(frozen=True, slots=True)
class Powertrain:
    """Battery (EV) or fuel and engine (combustion) channels."""

    channels: dict[str, FloatArray]
    regen: BoolArray
    charging: BoolArray


# Road-load model of a mid-size car.
MASS = 1900.0
_RHO_CDA = 1.2 * 0.62
_CRR = 0.009
_DRIVE_EFF = 0.9
_REGEN_EFF = 0.65
_AUX_W = 600.0
PACK_KWH = 75.0
_CHARGE_W = 11_000.0
_TANK_L = 50.0


def wheel_power(speed: FloatArray, accel: FloatArray) -> FloatArray:
    rolling = np.where(speed > 0.0, _CRR * MASS * _G * speed, 0.0)
    power: FloatArray = MASS * accel * speed + 0.5 * _RHO_CDA * speed**3 + rolling
    return power


def ev_powertrain(
    config: VehicleConfig,
    t: FloatArray,
    speed: FloatArray,
    accel: FloatArray,
    awake: BoolArray,
    no_drive_from: float | None,
) -> Powertrain:
    """Traction battery: drains while driving, regenerates when braking, charges when plugged.

    ``no_drive_from``: the battery is empty from then on (SOC 0, no power).
    """
    p_wheel = wheel_power(speed, accel)
    regen = (p_wheel < 0.0) & config.regen
    battery_out = np.where(p_wheel > 0.0, p_wheel / _DRIVE_EFF, 0.0)
    battery_out = battery_out + np.where(regen, p_wheel * _REGEN_EFF, 0.0) + _AUX_W * awake
    capacity = PACK_KWH * 3.6e6
    charging = np.zeros(len(t), bool)
    if config.plugged_in:
        needed = max(config.charge_limit - config.initial_soc, 0.0) / 100.0 * capacity
        charging = t < needed / _CHARGE_W
        battery_out = np.where(charging, -_CHARGE_W, battery_out)
    energy = integrate(battery_out)
    soc0 = config.initial_soc
    if no_drive_from is not None:
        end = round(no_drive_from / DT)
        soc0 = float(energy[: end + 1].max()) / capacity * 100.0
        battery_out = np.where(t >= no_drive_from, 0.0, battery_out)
        regen &= t < no_drive_from
    soc = np.clip(soc0 - energy / capacity * 100.0, 0.0, 100.0)
    if no_drive_from is not None:
        soc[t >= no_drive_from] = 0.0
    regen &= ~charging
    v_oc = 340.0 + 60.0 * soc / 100.0
    current = -battery_out / v_oc
    voltage = v_oc + 0.08 * current
    charge_state = np.where(charging, 2.0, 3.0) if config.plugged_in else np.zeros(len(t))
    remaining = np.maximum(config.charge_limit - soc, 0.0) / 100.0 * capacity / _CHARGE_W / 60.0
    channels = {
        "soc_pct": soc,
        "battery_power_w": battery_out,
        "BMS_PackStatus.PackVoltage": voltage,
        "BMS_PackStatus.PackCurrent": current,
        "BMS_PackStatus.StateOfCharge": soc,
        "OBC_ChargingStatus.ChargingState": charge_state,
        "OBC_ChargingStatus.IsCharging": charging.astype(np.float64),
        "OBC_ChargingStatus.ChargeCableConnected": np.full(len(t), float(config.plugged_in)),
        "OBC_ChargingStatus.ChargeMode": np.full(len(t), 1.0 if config.plugged_in else 0.0),
        "OBC_ChargingStatus.ChargePower": np.where(charging, _CHARGE_W / 1000.0, 0.0),
        "OBC_ChargingStatus.TimeToComplete": np.where(charging, np.ceil(remaining), 0.0),
        "OBC_ChargingStatus.ChargeLimit": np.full(len(t), config.charge_limit),
    }
    return Powertrain(channels, regen, charging)


_GEAR_BANDS = np.array([15.0, 30.0, 50.0, 70.0, 90.0])  # km/h upshift points, gears 1-6
_RPM_PER_KMH = np.array([110.0, 80.0, 55.0, 40.0, 32.0, 25.0])


def combustion_powertrain(
    config: VehicleConfig, speed: FloatArray, accel: FloatArray, running: BoolArray
) -> Powertrain:
    """Fuel, engine speed, throttle and gear of the combustion variant."""
    p_wheel = wheel_power(speed, accel)
    fuel_w = np.maximum(p_wheel, 0.0) / 0.28 + 4_000.0 * running
    litres = integrate(fuel_w) / 34.2e6
    level = np.clip(config.initial_fuel - litres / _TANK_L * 100.0, 0.0, 100.0)
    kmh = speed * 3.6
    gear = np.searchsorted(_GEAR_BANDS, kmh, side="right")
    rpm = np.where(running, np.maximum(800.0, kmh * _RPM_PER_KMH[gear]), 0.0)
    channels = {
        "gear_index": gear.astype(np.float64) + 1.0,
        "ECM_EngineData.EngineSpeed": rpm,
        "ECM_EngineData.ThrottlePosition": np.clip(p_wheel / 800.0, 0.0, 100.0) * running,
        "ECM_EngineData.EngineRunning": running.astype(np.float64),
        "ECM_FuelStatus.FuelLevel": level,
        "ECM_FuelStatus.FuelRange": level / 100.0 * _TANK_L / 6.5 * 100.0,
        "ECM_FuelStatus.FuelLevelLow": (level < 12.0).astype(np.float64),
    }
    none = np.zeros(len(speed), bool)
    return Powertrain(channels, none, none)


def tyre_pressure(temp_c: FloatArray, placard_kpa: float, set_at_c: float) -> FloatArray:
    """Gauge pressure at ``temp_c`` of a tyre set to ``placard_kpa`` at ``set_at_c`` (ideal gas)."""
    absolute = (placard_kpa + 101.3) * (temp_c + 273.15) / (set_at_c + 273.15)
    gauge: FloatArray = absolute - 101.3
    return gauge
