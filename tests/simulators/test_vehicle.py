"""Physics of the vehicle model: the channels are consistent with each other."""

from __future__ import annotations

import numpy as np
import pytest

from simulators import VehicleConfig, simulate
from simulators.vehicle import DT, integrate

from ._helpers import around, run


@pytest.fixture(scope="module", params=["urban", "wltp", "highway"])
def drive(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return simulate(VehicleConfig(cycle=request.param, duration=900, seed=11))


def test_odometer_is_the_integral_of_speed(drive) -> None:  # type: ignore[no-untyped-def]
    tr = drive.trace
    speed = tr["ESP_VehicleSpeed.VehicleSpeed"] / 3.6
    expected = float(np.trapezoid(speed, dx=DT)) / 1000.0
    travelled = float(tr["CLU_Odometer.Odometer"][-1] - tr["CLU_Odometer.Odometer"][0])
    assert expected > 1.0
    assert travelled == pytest.approx(expected, rel=0.005)


def test_acceleration_is_the_derivative_of_speed(drive) -> None:  # type: ignore[no-untyped-def]
    tr = drive.trace
    speed = tr["speed_mps"]
    derivative = np.gradient(speed, DT)
    assert np.allclose(tr["ACU_Acceleration.LongitudinalAccel"], derivative, atol=1e-9)
    # and integrating it back gives the speed
    assert np.allclose(integrate(derivative) + speed[0], speed, atol=0.05)
    assert np.abs(derivative).max() < 4.0  # a plausible drive: no more than ~0.4 g


def test_heading_matches_the_gnss_track(drive) -> None:  # type: ignore[no-untyped-def]
    tr = drive.trace
    lat = np.radians(tr["TCU_GnssPosition.GnssLatitude"])
    lon = np.radians(tr["TCU_GnssPosition.GnssLongitude"])
    step = 50
    dn = np.diff(lat[::step])
    de = np.diff(lon[::step]) * np.cos(lat[0])
    moving = tr["speed_mps"][::step][:-1] > 5.0
    bearing = np.degrees(np.arctan2(de, dn)) % 360.0
    heading = tr["TCU_GnssStatus.GnssHeading"][::step][:-1]
    diff = (bearing - heading + 180.0) % 360.0 - 180.0
    assert moving.sum() > 10
    assert np.abs(diff[moving]).max() < 5.0


def test_soc_falls_while_driving_and_rises_only_with_regeneration() -> None:
    tr = simulate(VehicleConfig(cycle="urban", duration=900, seed=4)).trace
    soc = tr["soc_pct"]
    rising = np.diff(soc) > 1e-12
    assert soc[-1] < soc[0]
    assert rising.any()  # this urban drive regenerates
    assert np.all(tr["regen"][1:][rising] == 1.0)
    no_regen = simulate(VehicleConfig(cycle="urban", duration=900, seed=4, regen=False)).trace
    assert np.all(np.diff(no_regen["soc_pct"]) <= 1e-12)


def test_soc_rises_when_charging_while_parked() -> None:
    tr = simulate(
        VehicleConfig(cycle="parking", duration=1800, initial_soc=40, plugged_in=True)
    ).trace
    soc = tr["soc_pct"]
    assert np.all(np.diff(soc) >= 0) and soc[-1] > soc[0] + 3.0
    assert np.all(tr["charging"] == 1.0)
    assert np.all(tr["speed_mps"] == 0.0)


def test_tyre_pressure_follows_tyre_temperature() -> None:
    tr = simulate(VehicleConfig(cycle="highway", duration=900, seed=2)).trace
    temp = tr["TPMS_TireStatus.TireTempFL"]
    pressure = tr["TPMS_TirePressure.TirePressureFL"]
    assert temp[-1] > temp[0] + 5.0
    ratio = (pressure + 101.3) / (temp + 273.15)
    assert np.allclose(ratio, ratio[0])


def test_combustion_variant_cranks_warms_up_and_names_gears() -> None:
    tr = simulate(VehicleConfig(variant="combustion", duration=900, seed=3)).trace
    t = tr.t
    voltage = tr["BCM_LvBattery.LvBatteryVoltage"]
    assert voltage[(t >= 1.0) & (t < 1.8)].min() < 10.5  # cranking dip
    assert voltage[(t > 5) & (t < 800)].min() > 13.5  # charging while running
    coolant = tr["ECM_EngineData.CoolantTemp"]
    assert coolant[0] == pytest.approx(15.0) and 80.0 < coolant[int(800 / DT)] < 95.0
    gears = set(np.unique(tr["VCU_PowertrainStatus.SelectedGear"]))
    assert 126.0 in gears and {1.0, 2.0} <= gears


def test_twelve_volt_battery_rests_when_parked() -> None:
    tr = simulate(VehicleConfig(cycle="parking", duration=600)).trace
    v = tr["BCM_LvBattery.LvBatteryVoltage"]
    assert 12.3 < v.min() <= v.max() < 12.8
    assert np.all(tr["VCU_PowertrainStatus.IgnitionState"] == 0)


def test_same_seed_same_drive_other_seed_other_drive() -> None:
    a = simulate(VehicleConfig(duration=300, seed=1)).trace
    b = simulate(VehicleConfig(duration=300, seed=1)).trace
    c = simulate(VehicleConfig(duration=300, seed=2)).trace
    assert np.array_equal(a["speed_mps"], b["speed_mps"])
    assert not np.array_equal(a["speed_mps"], c["speed_mps"])


def test_frames_follow_the_cycle_times_and_decode_to_the_trace() -> None:
    drive, decoded = run(VehicleConfig(duration=120, seed=8))
    t0 = drive.trace.config.start_time
    ts = decoded.signal("ESP_WheelSpeeds.WheelSpeedFL").timestamps
    assert np.median(np.diff(ts)) == pytest.approx(0.010, abs=2e-4)
    assert len(decoded.signal("TPMS_TirePressure.TirePressureFL").timestamps) in (119, 120, 121)
    speed = decoded.signal("ESP_VehicleSpeed.VehicleSpeed")
    idx = np.rint((speed.timestamps - t0) / DT).astype(int)
    truth = drive.trace["ESP_VehicleSpeed.VehicleSpeed"][np.clip(idx, 0, len(drive.trace.t) - 1)]
    assert np.abs(speed.values - truth).max() <= 0.005 + 1e-9
    assert len(around(decoded, "ECM_EngineData.EngineSpeed", 0, 1e12)) == 0  # EV: no ECM frames
