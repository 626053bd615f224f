"""Simulate one drive of one vehicle, with scenarios, into a `Trace` and its labels.

The order is fixed: the drive cycle gives a speed profile; scenarios that change the motion
(crash, breakdown, running out of charge, hard braking) cap it with an envelope; kinematics,
powertrain, thermal and electrical models follow from the final speed; then scenarios that
change signals (DTCs, tyre pressure, 12 V voltage, coolant, GNSS fix, ...) edit the channels.
Each scenario yields a `Label` saying what it did and when.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import vehicle as vm
from ._cycles import MOVE_END, speed_profile
from ._types import BoolArray, FloatArray
from .errors import ScenarioError
from .labels import Label
from .scenarios import Scenario
from .vehicle import DT, ActiveDtc, Trace, VehicleConfig

__all__ = ["Drive", "check_scenarios", "simulate"]

log = logging.getLogger(__name__)

_G = 9.80665
_OVERHEAT_C = 115.0
_OVERHEAT_DTC = 0x021700  # P0217 engine coolant over-temperature


@dataclass(frozen=True, slots=True, eq=False)
class Drive:
    """A simulated drive: the time series and the ground truth of its scenarios."""

    trace: Trace
    labels: tuple[Label, ...] = field(default=())


@dataclass(slots=True)
class _Events:
    """What the motion scenarios decided, for the signal stage and the labels."""

    stopped_from: float | None = None  # the vehicle stays stopped from then on
    hazards_from: float | None = None
    engine_off_from: float | None = None
    not_ready_from: float | None = None
    empty_from: float | None = None
    crash: tuple[float, float, Scenario] | None = None  # time, speed before (m/s)
    observed: dict[int, dict[str, Any]] = field(default_factory=dict)
    times: dict[int, tuple[float, float | None]] = field(default_factory=dict)
    dtcs: list[ActiveDtc] = field(default_factory=list)


def check_scenarios(
    config: VehicleConfig, scenarios: Sequence[Scenario], source: str | None = None
) -> None:
    """Raise `ScenarioError` for scenarios that do not fit the drive or each other."""
    for s in scenarios:
        spec = s.spec
        if spec.variant is not None and spec.variant != config.variant:
            raise ScenarioError(
                f"{s.kind} needs the {spec.variant} variant (the drive is {config.variant})",
                field=f"scenario[{s.index}].kind",
                path=source,
                line=s.line,
            )
        if spec.cycle == "parking" and config.driving:
            raise ScenarioError(
                f"{s.kind} needs a parked vehicle (cycle parking, not {config.cycle})",
                field=f"scenario[{s.index}].kind",
                path=source,
                line=s.line,
            )
        if spec.cycle == "driving" and not config.driving:
            raise ScenarioError(
                f"{s.kind} needs a drive (the cycle is parking)",
                field=f"scenario[{s.index}].kind",
                path=source,
                line=s.line,
            )
        if s.at >= config.duration:
            raise ScenarioError(
                f"{s.at:g} s is not within the drive (duration {config.duration:g} s)",
                field=f"scenario[{s.index}].at",
                path=source,
                line=s.line,
            )
    for i, a in enumerate(scenarios):
        for b in scenarios[i + 1 :]:
            key = a.spec.exclusive(a.params)
            if key is None or key != b.spec.exclusive(b.params):
                continue
            (a0, a1), (b0, b1) = a.window(), b.window()
            if a0 < b1 and b0 < a1:
                raise ScenarioError(
                    f"overlaps scenario[{a.index}] ({a.kind}, line {a.line}): both change "
                    f"the {key} at the same time",
                    path=source,
                    line=b.line,
                    field=f"scenario[{b.index}].at",
                )


def simulate(
    config: VehicleConfig, scenarios: Sequence[Scenario] = (), *, source: str | None = None
) -> Drive:
    """Simulate ``config``'s drive with ``scenarios``; deterministic for a given seed."""
    check_scenarios(config, scenarios, source)
    rng = np.random.default_rng([config.seed, 0x5EED])
    t = vm.time_grid(config.duration)
    speed = speed_profile(config.cycle, t, np.random.default_rng([config.seed, 1]))
    events = _Events()
    for s in scenarios:
        speed = _apply_motion(s, t, speed, events, source)
    ch: dict[str, FloatArray] = {}
    ignition = _ignition(config, t)
    awake = (ignition == vm.ON) | (ignition == vm.START)
    running = (ignition == vm.ON) & (config.variant == "combustion") & (t >= 1.8)
    if events.engine_off_from is not None:
        running &= t < events.engine_off_from
    accel = np.gradient(speed, DT) if len(t) > 1 else np.zeros_like(t)
    distance = vm.integrate(speed)
    heading, curvature = vm.road_heading(config.cycle, distance, rng)
    lat, lon = vm.position(config, speed, heading)
    kmh = speed * 3.6
    ch |= {
        "speed_mps": speed,
        "accel_mps2": accel,
        "distance_m": distance,
        "heading_rad": heading,
        "yaw_rate": curvature * speed,
        "ignition": ignition.astype(np.float64),
        "ESP_VehicleSpeed.VehicleSpeed": kmh,
        "ESP_VehicleSpeed.VehicleSpeedValid": np.ones_like(t),
        "ESP_VehicleSpeed.Standstill": (speed < 0.05).astype(np.float64),
        "ACU_Acceleration.LongitudinalAccel": accel,
        "ACU_Acceleration.LateralAccel": -curvature * speed**2,
        "ACU_Acceleration.VerticalAccel": _road_noise(speed, rng),
        "CLU_Odometer.Odometer": config.initial_odometer_km + distance / 1000.0,
        "CLU_Odometer.TripDistance": distance / 1000.0,
        "TCU_GnssPosition.GnssLatitude": lat,
        "TCU_GnssPosition.GnssLongitude": lon,
        "TCU_GnssStatus.GnssHeading": np.degrees(heading) % 360.0,
        "TCU_GnssStatus.GnssAltitude": 520.0 + 15.0 * np.sin(distance / 2500.0),
        "TCU_GnssStatus.GnssFixType": np.full_like(t, 2.0),
        "TCU_GnssStatus.GnssSatellites": 10.0 + np.round(2.0 * np.sin(t / 300.0)),
        "TCU_GnssStatus.GnssHorizontalAccuracy": 1.5 + 0.5 * np.sin(t / 97.0) ** 2,
    }
    for corner, sign in (("FL", -1.0), ("FR", 1.0), ("RL", -1.0), ("RR", 1.0)):
        ch[f"ESP_WheelSpeeds.WheelSpeed{corner}"] = kmh * (1.0 + sign * 0.8 * curvature)
    if config.variant == "ev":
        power = vm.ev_powertrain(config, t, speed, accel, awake, events.empty_from)
    else:
        power = vm.combustion_powertrain(config, speed, accel, running)
    ch |= power.channels
    ch["regen"] = power.regen.astype(np.float64)
    ch["charging"] = power.charging.astype(np.float64)
    ambient = _ambient(config, scenarios)
    _thermal(config, t, ch, ambient, running, scenarios, rng)
    _low_voltage(config, t, ch, ignition, awake, ambient)
    _body(config, t, ch, ignition, speed, accel, curvature, running, events, rng)
    _service(config, t, ch, speed, distance, scenarios, events, source)
    for s in scenarios:
        try:
            _apply_signal(s, config, t, ch, events)
        except ScenarioError as exc:
            if exc.path is not None or source is None:
                raise
            raise ScenarioError(exc.reason, path=source, line=exc.line, field=exc.field) from None
    trace = Trace(config, t, ch, tuple(events.dtcs))
    labels = tuple(_label(s, config, events) for s in scenarios)
    log.debug("simulated %s: %.0f s, %d scenarios", config.vin, config.duration, len(scenarios))
    return Drive(trace, labels)


def _first(t: FloatArray, mask: BoolArray, s: Scenario, what: str, source: str | None) -> int:
    hits = np.flatnonzero(mask & (t >= s.at))
    if not len(hits):
        raise ScenarioError(
            f"the vehicle is never {what} at or after {s.at:g} s on this drive",
            path=source,
            line=s.line,
            field=f"scenario[{s.index}].at",
        )
    return int(hits[0])


def _apply_motion(
    s: Scenario, t: FloatArray, speed: FloatArray, ev: _Events, source: str | None
) -> FloatArray:
    p = s.params
    if s.kind == "crash":
        i = _first(t, speed * 3.6 >= float(p["min_speed_kmh"]), s, "fast enough", source)
        tc, v0, pulse = float(t[i]), float(speed[i]), float(p["pulse_ms"]) / 1000.0
        phase = np.clip((t - tc) / pulse, 0.0, 1.0)
        env = np.where(t < tc, np.inf, v0 * (1.0 + np.cos(np.pi * phase)) / 2.0)
        ev.crash = (tc, v0, s)
        ev.stopped_from = ev.hazards_from = ev.engine_off_from = tc + pulse
        ev.not_ready_from = tc
        ev.times[s.index] = (tc, None)
        out = np.minimum(speed, env)
        peak = float(np.max(np.abs(np.gradient(out, DT)[i : i + int(pulse / DT) + 2])))
        ev.observed[s.index] = {
            "speed_kmh": round(v0 * 3.6, 2),
            "delta_v_kmh": round(v0 * 3.6, 2),
            "peak_accel_g": round(peak / _G, 2),
            "severity": _severity(v0 * 3.6),
            "airbag_deployed": True,
        }
        return out
    if s.kind in ("breakdown", "ev_out_of_charge"):
        i = _first(t, speed > 2.0, s, "moving", source)
        tb, v0 = float(t[i]), float(speed[i])
        decel = 1.5 if s.kind == "breakdown" else 0.8
        stop = tb + v0 / decel
        env = np.where(t < tb, np.inf, np.maximum(v0 - decel * (t - tb), 0.0))
        ev.stopped_from, ev.hazards_from, ev.not_ready_from = stop, stop + 2.0, tb
        if s.kind == "breakdown":
            ev.engine_off_from = tb
            ev.dtcs.append(ActiveDtc(int(p["dtc"]), int(p["severity"]), int(p["source_ecu"]), tb))
        else:
            ev.empty_from = tb
        ev.times[s.index] = (tb, None)
        ev.observed[s.index] = {
            "speed_kmh": round(v0 * 3.6, 2),
            "stopped_offset_s": round(stop, 3),
            "hazard_lights_offset_s": round(stop + 2.0, 3),
        }
        return np.minimum(speed, env)
    if s.kind == "hard_braking":
        i = _first(t, speed * 3.6 >= float(p["min_speed_kmh"]), s, "fast enough", source)
        tb, v0, a = float(t[i]), float(speed[i]), float(p["decel_g"]) * _G
        stop = tb + v0 / a
        braking = np.maximum(v0 - a * (t - tb), 0.0)
        pull_away = np.maximum(1.5 * (t - stop - 3.0), 0.0)
        env = np.where(t < tb, np.inf, np.where(t < stop + 3.0, braking, pull_away))
        ev.times[s.index] = (tb, stop)
        out = np.minimum(speed, env)
        peak = float(np.max(np.abs(np.gradient(out, DT)[i : int(stop / DT) + 2])))
        ev.observed[s.index] = {
            "speed_kmh": round(v0 * 3.6, 2),
            "peak_decel_g": round(peak / _G, 2),
            "airbag_deployed": False,
        }
        return out
    return speed


def _severity(delta_v_kmh: float) -> int:
    return 1 if delta_v_kmh < 15.0 else 2 if delta_v_kmh < 35.0 else 3


def _ignition(config: VehicleConfig, t: FloatArray) -> FloatArray:
    if not config.driving:
        return np.full_like(t, vm.LOCK)
    ign = np.full_like(t, vm.ON)
    ign[t < 1.0] = vm.OFF
    if config.variant == "combustion":
        ign[(t >= 1.0) & (t < 1.8)] = vm.START
    ign[t >= config.duration - 2.0] = vm.OFF
    return ign


def _ambient(config: VehicleConfig, scenarios: Sequence[Scenario]) -> tuple[float, float]:
    """(ambient temperature, temperature the tyres were set at)."""
    for s in scenarios:
        if s.kind == "cold_morning":
            return float(s.params["ambient_c"]), float(s.params["inflated_at_c"])
    return config.ambient_c, config.ambient_c


def _road_noise(speed: FloatArray, rng: np.random.Generator) -> FloatArray:
    noise: FloatArray = rng.normal(0.0, 0.12, len(speed)) * np.minimum(speed / 15.0, 1.0)
    return noise


def _thermal(
    config: VehicleConfig,
    t: FloatArray,
    ch: dict[str, FloatArray],
    ambient: tuple[float, float],
    running: BoolArray,
    scenarios: Sequence[Scenario],
    rng: np.random.Generator,
) -> None:
    air, set_at = ambient
    kmh = ch["ESP_VehicleSpeed.VehicleSpeed"]
    tyre = vm.lag(air + 0.22 * kmh, air, 400.0)
    placards = {"FL": 250.0, "FR": 250.0, "RL": 260.0, "RR": 260.0}
    for k, corner in enumerate(placards):
        temp = tyre + (0.6, 0.4, -0.4, -0.6)[k]
        ch[f"TPMS_TireStatus.TireTemp{corner}"] = temp
        placard = placards[corner] + float(rng.uniform(-2.0, 2.0))
        ch[f"tyre_placard_{corner}"] = np.full_like(t, placard)
        ch[f"TPMS_TirePressure.TirePressure{corner}"] = vm.tyre_pressure(temp, placard, set_at)
    ch["TPMS_TireStatus.TpmsFault"] = np.zeros_like(t)
    if config.variant == "combustion":
        throttle = ch["ECM_EngineData.ThrottlePosition"]
        target = np.where(running, 90.0 + 0.03 * throttle, air)
        coolant = vm.lag(target, air, np.where(running, 150.0, 1500.0))
        ch["ECM_EngineData.CoolantTemp"] = coolant
        ch["ECM_EngineData.OilTemp"] = vm.lag(coolant, air, 300.0)
    else:
        current = np.abs(ch["BMS_PackStatus.PackCurrent"])
        pack = vm.lag(air + 8.0 + 0.02 * current, air + 5.0, 900.0)
        cell = ch["BMS_PackStatus.PackVoltage"] / 96.0
        ch |= {
            "BMS_PackStatus.PackTempAvg": pack,
            "BMS_PackStatus.BmsFault": np.zeros_like(t),
            "cell_voltage_v": cell,
            "cell_temp_c": pack,
            "BMS_CellStats.CellVoltageMin": cell - 0.012,
            "BMS_CellStats.CellVoltageMax": cell + 0.009,
            "BMS_CellStats.CellVoltageMinId": np.full_like(t, 37.0),
            "BMS_CellStats.CellVoltageMaxId": np.full_like(t, 81.0),
            "BMS_CellStats.CellTempMin": pack - 1.5,
            "BMS_CellStats.CellTempMax": pack + 2.0,
            "BMS_CellStats.CellTempMinId": np.full_like(t, 3.0),
            "BMS_CellStats.CellTempMaxId": np.full_like(t, 42.0),
            "BMS_CellStats.StateOfHealth": np.full_like(t, 96.5),
            "BMS_CellStats.IsolationResistance": np.full_like(t, 2500.0),
        }


def _low_voltage(
    config: VehicleConfig,
    t: FloatArray,
    ch: dict[str, FloatArray],
    ignition: FloatArray,
    awake: BoolArray,
    ambient: tuple[float, float],
) -> None:
    """12 V battery: charged at 14.2 V while awake, resting and slowly draining when off,
    a cranking dip while the combustion engine starts."""
    resting = 12.65 - 0.01 * t / 3600.0
    voltage = np.where(awake, 14.2, resting)
    current = np.where(awake, 3.0, -0.03)
    crank = ignition == vm.START
    if crank.any():
        phase = (t - 1.0) / 0.8
        voltage = np.where(crank, 10.9 - 1.3 * np.sin(np.pi * np.clip(phase, 0, 1)), voltage)
        current = np.where(crank, -180.0, current)
    ch["BCM_LvBattery.LvBatteryVoltage"] = voltage
    ch["BCM_LvBattery.LvBatteryCurrent"] = current
    ch["BCM_LvBattery.LvBatteryTemp"] = np.full_like(t, ambient[0] + 3.0)


def _body(
    config: VehicleConfig,
    t: FloatArray,
    ch: dict[str, FloatArray],
    ignition: FloatArray,
    speed: FloatArray,
    accel: FloatArray,
    curvature: FloatArray,
    running: BoolArray,
    ev: _Events,
    rng: np.random.Generator,
) -> None:
    on = ignition == vm.ON
    parked = (t < 4.0) | (t >= config.duration - MOVE_END + 2.0) | ~on
    if ev.stopped_from is not None:
        parked |= t >= ev.stopped_from + 3.0
    if config.variant == "ev":
        gear = np.where(parked, vm.PARK, vm.DRIVE)
        ready = on
    else:
        gear = np.where(parked, vm.PARK, ch["gear_index"])
        ready = running
    if ev.not_ready_from is not None:
        ready = ready & (t < ev.not_ready_from)
    brake = ((accel < -0.3) | ((speed < 0.05) & on & ~parked)).astype(np.float64)
    hazard = np.zeros_like(t)
    if ev.hazards_from is not None:
        hazard[t >= ev.hazards_from] = 1.0
    turning = (speed > 1.0) & (np.abs(curvature) > 1.0 / 400.0)
    passengers = int(rng.integers(0, 4)) if config.driving else 0
    occupied = (ignition != vm.LOCK).astype(np.float64) if config.driving else np.zeros_like(t)
    ch |= {
        "VCU_PowertrainStatus.IgnitionState": ignition,
        "VCU_PowertrainStatus.SelectedGear": gear.astype(np.float64),
        "VCU_PowertrainStatus.ReadyToDrive": ready.astype(np.float64),
        "VCU_PowertrainStatus.BrakePedalPressed": brake,
        "BCM_Lights.HazardSwitchOn": hazard,
        "BCM_Lights.HazardIsSignaling": hazard.copy(),
        "BCM_Lights.TurnIndicatorLeft": (turning & (curvature < 0)).astype(np.float64),
        "BCM_Lights.TurnIndicatorRight": (turning & (curvature > 0)).astype(np.float64),
        "BCM_Lights.LowBeamOn": on.astype(np.float64),
        "BCM_Lights.BrakeLightOn": brake,
    }
    seats = ("Row1Driver", "Row1Passenger", "Row2DriverSide", "Row2PassengerSide", "Row2Middle")
    for k, seat in enumerate(seats):
        value = occupied if k <= passengers else np.zeros_like(t)
        ch[f"OCS_SeatStatus.Occupied{seat}"] = value
        ch[f"OCS_SeatStatus.Belted{seat}"] = value
    ch["OCS_SeatStatus.PassengerClass"] = occupied * 3.0 if passengers else np.zeros_like(t)
    if ev.crash is not None:
        tc, v0, s = ev.crash
        deployed = (t >= tc + 0.015).astype(np.float64)
        side = str(s.params["crash_type"])
        kind = {"front": 1.0, "side_left": 2.0, "side_right": 3.0}[side]
        front = deployed if side == "front" else np.zeros_like(t)
        ch |= {
            "ACU_CrashStatus.AirbagDeployed": deployed,
            "ACU_CrashStatus.CrashSeverity": deployed * _severity(v0 * 3.6),
            "ACU_CrashStatus.CrashType": deployed * kind,
            "ACU_CrashStatus.DriverFrontAirbagDeployed": front,
            "ACU_CrashStatus.PassengerFrontAirbagDeployed": front * (passengers >= 1),
            "ACU_CrashStatus.SideAirbagLeftDeployed": deployed * (side == "side_left"),
            "ACU_CrashStatus.SideAirbagRightDeployed": deployed * (side == "side_right"),
            "ACU_CrashStatus.CurtainAirbagLeftDeployed": deployed * (side == "side_left"),
            "ACU_CrashStatus.CurtainAirbagRightDeployed": deployed * (side == "side_right"),
            "ACU_CrashStatus.BeltPretensionersFired": deployed,
            "ACU_CrashStatus.CrashEventCounter": deployed,
            "ACU_CrashStatus.CrashDeltaV": deployed * v0 * 3.6,
        }
        if side != "front":
            pulse = float(s.params["pulse_ms"]) / 1000.0
            phase = np.clip((t - tc) / pulse, 0.0, 1.0)
            lateral = np.where(
                (t >= tc) & (t < tc + pulse), np.pi / 2 * v0 / pulse * np.sin(np.pi * phase), 0.0
            )
            ch["ACU_Acceleration.LateralAccel"] = ch["ACU_Acceleration.LateralAccel"] + (
                lateral if side == "side_right" else -lateral
            )


def _service(
    config: VehicleConfig,
    t: FloatArray,
    ch: dict[str, FloatArray],
    speed: FloatArray,
    distance: FloatArray,
    scenarios: Sequence[Scenario],
    ev: _Events,
    source: str | None,
) -> None:
    start = config.distance_to_service_km
    for s in scenarios:
        if s.kind == "service_due":
            i = _first(t, speed > 1.0, s, "moving", source)
            start = float(distance[i]) / 1000.0
            ev.times[s.index] = (float(t[i]), None)
            ev.observed[s.index] = {
                "odometer_km": round(config.initial_odometer_km + start, 3),
                "distance_to_service_km": 0.0,
            }
    dts = start - distance / 1000.0
    tts = config.days_to_service - t / 86400.0
    ch["CLU_ServiceInterval.DistanceToService"] = dts
    ch["CLU_ServiceInterval.TimeToService"] = np.floor(tts)
    ch["CLU_ServiceInterval.ServiceDue"] = ((dts <= 0.0) | (tts <= 0.0)).astype(np.float64)


def _apply_signal(
    s: Scenario, config: VehicleConfig, t: FloatArray, ch: dict[str, FloatArray], ev: _Events
) -> None:
    p = s.params
    after = t >= s.at
    if s.kind == "slow_puncture":
        key = f"TPMS_TirePressure.TirePressure{p['tyre']}"
        loss = np.where(after, float(p["rate_kpa_per_h"]) * (t - s.at) / 3600.0, 0.0)
        ch[key] = ch[key] - loss
        ev.times[s.index] = (s.at, None)
        ev.observed[s.index] = {"pressure_loss_kpa_at_end": round(float(loss[-1]), 3)}
    elif s.kind == "lv_drain":
        key = "BCM_LvBattery.LvBatteryVoltage"
        drop = np.where(after, float(p["rate_v_per_h"]) * (t - s.at) / 3600.0, 0.0)
        ch[key] = np.maximum(ch[key] - drop, 8.0)
        ch["BCM_LvBattery.LvBatteryCurrent"] = np.where(
            after, -float(p["current_a"]), ch["BCM_LvBattery.LvBatteryCurrent"]
        )
        ev.times[s.index] = (s.at, None)
        ev.observed[s.index] = {"voltage_at_end_v": round(float(ch[key][-1]), 3)}
    elif s.kind == "overheating":
        key = "ECM_EngineData.CoolantTemp"
        i = round(s.at / DT)
        start, peak = float(ch[key][i]), float(p["peak_c"])
        ramp = start + (peak - start) * np.clip((t - s.at) / float(p["ramp_s"]), 0.0, 1.0)
        ch[key] = np.where(after, np.maximum(ch[key], ramp), ch[key])
        crossing = np.flatnonzero(ch[key] > _OVERHEAT_C)
        over = float(t[crossing[0]]) if len(crossing) else None
        if over is not None:
            ev.dtcs.append(ActiveDtc(_OVERHEAT_DTC, 2, 0x10, over))
        ev.times[s.index] = (s.at, None)
        ev.observed[s.index] = {
            "coolant_at_start_c": round(start, 2),
            "over_115_offset_s": None if over is None else round(over, 3),
            "dtc": _OVERHEAT_DTC,
        }
    elif s.kind == "pothole":
        _pothole(s, t, ch, ev)
    elif s.kind == "cold_morning":
        keys = [f"TPMS_TirePressure.TirePressure{c}" for c in ("FL", "FR", "RL", "RR")]
        low = min(float(ch[k][0]) for k in keys)
        ev.times[s.index] = (0.0, None)
        ev.observed[s.index] = {
            "pressure_at_start_kpa": round(low, 2),
            "pressure_at_end_kpa": round(min(float(ch[k][-1]) for k in keys), 2),
        }
    elif s.kind == "jump_start":
        key = "BCM_LvBattery.LvBatteryVoltage"
        dip = float(p["dip_s"])
        before = (t >= s.at - 60.0) & (t < s.at)
        during = (t >= s.at) & (t < s.at + dip)
        v = np.where(before, float(p["before_v"]), ch[key])
        shape = (
            float(p["dip_v"])
            + (float(p["before_v"]) - float(p["dip_v"]))
            * (np.abs((t - s.at) / dip - 0.5) * 2.0) ** 2
        )
        ch[key] = np.where(during, shape, v)
        ev.times[s.index] = (s.at, s.at + dip)
        ev.observed[s.index] = {"min_voltage_v": float(p["dip_v"])}
    elif s.kind == "gnss_dropout":
        end = s.at + float(p["duration_s"])
        lost = (t >= s.at) & (t < end)
        i = max(round(s.at / DT) - 1, 0)
        for name in (
            "Position.GnssLatitude",
            "Position.GnssLongitude",
            "Status.GnssHeading",
            "Status.GnssAltitude",
        ):
            key = f"TCU_Gnss{name}"
            ch[key] = np.where(lost, ch[key][i], ch[key])
        ch["TCU_GnssStatus.GnssFixType"] = np.where(lost, 0.0, ch["TCU_GnssStatus.GnssFixType"])
        ch["TCU_GnssStatus.GnssSatellites"] = np.where(
            lost, 2.0, ch["TCU_GnssStatus.GnssSatellites"]
        )
        ch["TCU_GnssStatus.GnssHorizontalAccuracy"] = np.where(
            lost, 127.5, ch["TCU_GnssStatus.GnssHorizontalAccuracy"]
        )
        ev.times[s.index] = (s.at, min(end, config.duration))
        ev.observed[s.index] = {"fix_lost_s": float(p["duration_s"])}


def _pothole(s: Scenario, t: FloatArray, ch: dict[str, FloatArray], ev: _Events) -> None:
    speed = ch["speed_mps"]
    hits = np.flatnonzero((speed * 3.6 >= float(s.params["min_speed_kmh"])) & (t >= s.at))
    if not len(hits):
        raise ScenarioError(
            f"the vehicle is never fast enough at or after {s.at:g} s on this drive",
            line=s.line,
            field=f"scenario[{s.index}].at",
        )
    tp, v = float(t[hits[0]]), float(speed[hits[0]])
    peak = float(s.params["peak_g"]) * _G
    vertical = ch["ACU_Acceleration.VerticalAccel"].copy()
    for start in (tp, tp + 2.8 / v):
        phase = (t - start) / 0.03
        inside = (phase >= 0.0) & (phase < 1.0)
        vertical = vertical + np.where(inside, peak * np.sin(2 * np.pi * phase), 0.0)
    ch["ACU_Acceleration.VerticalAccel"] = vertical
    ev.times[s.index] = (tp, tp + 2.8 / v + 0.03)
    ev.observed[s.index] = {
        "speed_kmh": round(v * 3.6, 2),
        "peak_vertical_g": s.params["peak_g"],
        "airbag_deployed": False,
    }


def _label(s: Scenario, config: VehicleConfig, ev: _Events) -> Label:
    start, end = ev.times.get(s.index, (s.at, None))
    if end is not None and not math.isfinite(end):
        end = None
    return Label(
        vehicle=config.vin,
        kind=s.kind,
        label=s.spec.label,
        time=config.start_time + start,
        offset_s=start,
        end_offset_s=end,
        parameters={"at": s.at, **s.params},
        observed=ev.observed.get(s.index, {}),
        description=s.spec.description,
        scenario=s.index,
        line=s.line,
    )
