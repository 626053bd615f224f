"""Every scenario produces the pattern its label claims, seen through the decoder; hard
negatives do not produce the positive pattern."""

from __future__ import annotations

import numpy as np
import pytest

from simulators import Scenario, VehicleConfig

from ._helpers import around, run

T0 = 1_700_000_000.0
G = 9.80665


def _one(kind: str, at: float, config: VehicleConfig, **params: float | str):  # type: ignore[no-untyped-def]
    drive, decoded = run(config, [Scenario(kind, at, params, index=1)])
    (label,) = drive.labels
    assert label.kind == kind and label.vehicle == config.vin and label.scenario == 1
    return label, decoded


def test_crash() -> None:
    label, d = _one("crash", 60, VehicleConfig(duration=240, seed=1))
    t = label.time
    assert label.label == "positive" and label.observed["peak_accel_g"] >= 10
    accel = around(d, "ACU_Acceleration.LongitudinalAccel", t - 0.05, t + 0.2)
    assert accel.min() < -10 * G
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", T0, t) == 0)
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", t + 0.1, T0 + 240) == 1)
    severity = around(d, "ACU_CrashStatus.CrashSeverity", t + 0.1, T0 + 240)
    assert np.all(severity == label.observed["severity"])
    assert np.all(around(d, "ESP_VehicleSpeed.VehicleSpeed", t + 0.2, T0 + 240) == 0)
    assert np.all(around(d, "BCM_Lights.HazardIsSignaling", t + 0.5, T0 + 240) == 1)


def test_breakdown() -> None:
    label, d = _one("breakdown", 60, VehicleConfig(duration=300, seed=2), dtc=0x0A1B2C)
    t, stop = label.time, T0 + label.observed["stopped_offset_s"]
    codes = around(d, "GW_DtcReport.DtcCode", t, T0 + 300)
    assert 0x0A1B2C in codes and np.all(around(d, "GW_DtcReport.DtcSeverity", t, T0 + 300) == 3)
    assert np.all(around(d, "GW_DtcReport.DtcCount", t + 0.2, T0 + 300) == 1)
    assert len(around(d, "GW_DtcReport.DtcCode", T0, t)) == 0
    assert np.all(around(d, "ESP_VehicleSpeed.VehicleSpeed", stop + 0.1, T0 + 300) == 0)
    assert np.all(around(d, "BCM_Lights.HazardIsSignaling", stop + 2.5, T0 + 300) == 1)
    assert np.all(around(d, "BCM_Lights.HazardIsSignaling", T0, t) == 0)
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", T0, T0 + 300) == 0)


def test_ev_out_of_charge() -> None:
    label, d = _one("ev_out_of_charge", 100, VehicleConfig(duration=400, seed=3))
    t, stop = label.time, T0 + label.observed["stopped_offset_s"]
    soc = around(d, "BMS_PackStatus.StateOfCharge", T0, t)
    assert soc[0] > 0 and np.all(np.diff(soc) <= 0.1 + 1e-9)
    assert np.all(around(d, "BMS_PackStatus.StateOfCharge", t + 0.1, T0 + 400) == 0)
    assert np.all(around(d, "ESP_VehicleSpeed.VehicleSpeed", stop + 0.1, T0 + 400) == 0)
    assert around(d, "ESP_VehicleSpeed.VehicleSpeed", t - 0.1, t + 0.1).max() > 7


def test_slow_puncture() -> None:
    config = VehicleConfig(cycle="parking", duration=2 * 3600)
    _label, d = _one("slow_puncture", 600, config, tyre="RL", rate_kpa_per_h=5.0)
    rl = around(d, "TPMS_TirePressure.TirePressureRL", T0, T0 + 2 * 3600)
    rr = around(d, "TPMS_TirePressure.TirePressureRR", T0, T0 + 2 * 3600)
    loss = (rl[0] - rr[0]) - (rl[-1] - rr[-1])
    assert loss == pytest.approx(5.0 * (2 * 3600 - 600) / 3600, abs=0.3)
    assert np.all(np.diff(rl) <= 0.1 + 1e-9)


def test_lv_drain_while_parked() -> None:
    config = VehicleConfig(cycle="parking", duration=3 * 3600)
    label, d = _one("lv_drain", 1800, config, rate_v_per_h=0.4)
    v = around(d, "BCM_LvBattery.LvBatteryVoltage", T0, T0 + 3 * 3600)
    assert v[0] > 12.5 and v[-1] == pytest.approx(v[0] - 0.4 * 2.5, abs=0.05)
    assert label.observed["voltage_at_end_v"] == pytest.approx(float(v[-1]), abs=0.01)


def test_overheating() -> None:
    config = VehicleConfig(variant="combustion", duration=600, seed=4)
    label, d = _one("overheating", 200, config, ramp_s=200.0)
    over = T0 + label.observed["over_115_offset_s"]
    coolant = around(d, "ECM_EngineData.CoolantTemp", over + 1, T0 + 600)
    assert np.all(coolant >= 115) and coolant[-1] >= 121  # 1 degC resolution
    assert np.all(around(d, "ECM_EngineData.CoolantTemp", T0, over - 2) <= 115)
    assert 0x021700 in around(d, "GW_DtcReport.DtcCode", over, T0 + 600)


def test_service_due() -> None:
    label, d = _one("service_due", 120, VehicleConfig(duration=400, seed=5))
    t = label.time
    dts = d.signal("CLU_ServiceInterval.DistanceToService")
    assert np.all(dts.values[dts.timestamps < t] >= 0)
    assert np.all(dts.values[dts.timestamps > t] <= 0)
    due = d.signal("CLU_ServiceInterval.ServiceDue")
    first = due.timestamps[due.values == 1][0]
    assert t <= first <= t + 1.1
    assert dts.values[-1] < -0.5


def test_hard_braking_is_not_a_crash() -> None:
    label, d = _one("hard_braking", 60, VehicleConfig(duration=300, seed=6))
    assert label.label == "negative"
    t = label.time
    accel = around(d, "ACU_Acceleration.LongitudinalAccel", t - 1, t + 10)
    assert accel.min() == pytest.approx(-0.9 * G, abs=0.3)
    everything = around(d, "ACU_Acceleration.LongitudinalAccel", T0, T0 + 300)
    assert np.abs(everything).max() < 5 * G
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", T0, T0 + 300) == 0)


def test_pothole_spikes_are_vertical_and_short() -> None:
    label, d = _one("pothole", 60, VehicleConfig(duration=200, seed=7), peak_g=3.0)
    t = label.time
    vertical = d.signal("ACU_Acceleration.VerticalAccel")
    spikes = vertical.timestamps[np.abs(vertical.values) > 1.5 * G]
    assert len(spikes) >= 2 and spikes.min() >= t - 0.01 and spikes.max() <= t + 1.0
    assert np.abs(around(d, "ACU_Acceleration.LongitudinalAccel", T0, T0 + 200)).max() < 5 * G
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", T0, T0 + 200) == 0)


def test_cold_morning_pressure_recovers() -> None:
    config = VehicleConfig(cycle="highway", duration=1500, seed=8)
    _label, d = _one("cold_morning", 0, config, ambient_c=-10.0)
    fl = around(d, "TPMS_TirePressure.TirePressureFL", T0, T0 + 1500)
    assert fl[0] < 225 and fl[-1] > fl[0] + 8
    assert np.all(around(d, "TPMS_TireStatus.TirePressureLowFL", T0, T0 + 1500) == 0)


def test_jump_start_dip_recovers() -> None:
    config = VehicleConfig(variant="combustion", duration=300, seed=9)
    label, d = _one("jump_start", 100, config, dip_v=9.0, dip_s=0.6)
    t = label.time
    v = around(d, "BCM_LvBattery.LvBatteryVoltage", t, t + 0.6)
    assert v.min() < 9.3
    assert np.all(around(d, "BCM_LvBattery.LvBatteryVoltage", t + 1, t + 100) > 13.5)


def test_gnss_dropout() -> None:
    label, d = _one("gnss_dropout", 50, VehicleConfig(duration=200, seed=10), duration_s=5.0)
    t = label.time
    assert np.all(around(d, "TCU_GnssStatus.GnssFixType", t + 0.1, t + 4.9) == 0)
    assert np.all(around(d, "TCU_GnssStatus.GnssFixType", t + 5.2, T0 + 200) == 2)
    lat = around(d, "TCU_GnssPosition.GnssLatitude", t + 0.1, t + 4.9)
    assert np.all(lat == lat[0])


def test_scenarios_combine_on_one_drive() -> None:
    config = VehicleConfig(variant="combustion", duration=600, seed=12)
    scenarios = [
        Scenario("slow_puncture", 10, {"tyre": "FR"}, index=1),
        Scenario("hard_braking", 60, index=2),
        Scenario("gnss_dropout", 100, index=3),
        Scenario("overheating", 150, index=4),
        Scenario("crash", 400, index=5),
    ]
    drive, d = run(config, scenarios)
    assert [label.kind for label in drive.labels] == [s.kind for s in scenarios]
    crash = drive.labels[-1]
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", crash.time + 0.1, T0 + 600) == 1)
    assert np.all(around(d, "ACU_CrashStatus.AirbagDeployed", T0, crash.time) == 0)
