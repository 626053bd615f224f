"""The demo vehicle's DBC and signal map: layout, features, round trips, coverage."""

from __future__ import annotations

import math
from collections.abc import Iterator
from importlib.resources import as_file
from typing import Any

import cantools
import pytest
from cantools.database.can import Database, Message, Signal
from hypothesis import given, settings
from hypothesis import strategies as st

from dbc import DEMO_DBC, Catalogue, data_file, demo_catalogue

# name: (frame id, extended, FD, bytes, cycle time in ms)
MESSAGES = {
    "ACU_CrashStatus": (0x050, False, False, 8, 50),
    "ESP_VehicleSpeed": (0x0A0, False, False, 8, 20),
    "ESP_WheelSpeeds": (0x0A8, False, False, 8, 10),
    "ACU_Acceleration": (0x0B0, False, False, 8, 10),
    "ECM_EngineData": (0x120, False, False, 8, 20),
    "VCU_PowertrainStatus": (0x1A0, False, False, 8, 100),
    "BMS_PackStatus": (0x2A0, False, False, 8, 100),
    "BMS_CellStats": (0x2B0, False, True, 64, 500),
    "OBC_ChargingStatus": (0x3A0, False, False, 8, 1000),
    "BCM_LvBattery": (0x3C0, False, False, 8, 100),
    "BCM_Lights": (0x3D0, False, False, 8, 100),
    "OCS_SeatStatus": (0x3E0, False, False, 8, 500),
    "TPMS_TirePressure": (0x4A0, False, False, 8, 1000),
    "TPMS_TireStatus": (0x4A1, False, False, 8, 1000),
    "ECM_FuelStatus": (0x5A0, False, False, 8, 1000),
    "CLU_Odometer": (0x5C0, False, False, 8, 1000),
    "CLU_ServiceInterval": (0x5C1, False, False, 8, 1000),
    "GW_DtcReport": (0x6A0, False, False, 8, 100),
    "TCU_GnssPosition": (0x18FF1025, True, False, 8, 100),
    "TCU_GnssStatus": (0x18FF1125, True, False, 8, 100),
}

# What the care rules and the simulator read, by VSS path: (message, signal, unit).
REQUIRED_VSS = {
    "Vehicle.Speed": ("ESP_VehicleSpeed", "VehicleSpeed", "km/h"),
    "Vehicle.TraveledDistance": ("CLU_Odometer", "Odometer", "km"),
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed": ("ESP_WheelSpeeds", "WheelSpeedFL", "km/h"),
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed": ("ESP_WheelSpeeds", "WheelSpeedRR", "km/h"),
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": (
        "TPMS_TirePressure",
        "TirePressureFL",
        "kPa",
    ),
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Temperature": (
        "TPMS_TireStatus",
        "TireTempRR",
        "celsius",
    ),
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": (
        "BMS_PackStatus",
        "StateOfCharge",
        "percent",
    ),
    "Vehicle.Powertrain.TractionBattery.CurrentVoltage": ("BMS_PackStatus", "PackVoltage", "V"),
    "Vehicle.Powertrain.TractionBattery.CurrentCurrent": ("BMS_PackStatus", "PackCurrent", "A"),
    "Vehicle.Powertrain.TractionBattery.Temperature.Average": (
        "BMS_PackStatus",
        "PackTempAvg",
        "celsius",
    ),
    "Vehicle.Powertrain.TractionBattery.Charging.IsCharging": (
        "OBC_ChargingStatus",
        "IsCharging",
        None,
    ),
    "Vehicle.LowVoltageBattery.CurrentVoltage": ("BCM_LvBattery", "LvBatteryVoltage", "V"),
    "Vehicle.Powertrain.CombustionEngine.ECT": ("ECM_EngineData", "CoolantTemp", "celsius"),
    "Vehicle.Powertrain.CombustionEngine.Speed": ("ECM_EngineData", "EngineSpeed", "rpm"),
    "Vehicle.Powertrain.FuelSystem.RelativeLevel": ("ECM_FuelStatus", "FuelLevel", "percent"),
    "Vehicle.Acceleration.Longitudinal": ("ACU_Acceleration", "LongitudinalAccel", "m/s^2"),
    "Vehicle.Acceleration.Lateral": ("ACU_Acceleration", "LateralAccel", "m/s^2"),
    "Vehicle.Acceleration.Vertical": ("ACU_Acceleration", "VerticalAccel", "m/s^2"),
    "Vehicle.Body.Lights.Hazard.IsSignaling": ("BCM_Lights", "HazardIsSignaling", None),
    "Vehicle.Cabin.Seat.Row1.DriverSide.IsOccupied": ("OCS_SeatStatus", "OccupiedRow1Driver", None),
    "Vehicle.Cabin.Seat.Row2.PassengerSide.IsOccupied": (
        "OCS_SeatStatus",
        "OccupiedRow2PassengerSide",
        None,
    ),
    "Vehicle.CurrentLocation.Latitude": ("TCU_GnssPosition", "GnssLatitude", "degrees"),
    "Vehicle.CurrentLocation.Longitude": ("TCU_GnssPosition", "GnssLongitude", "degrees"),
    "Vehicle.CurrentLocation.Heading": ("TCU_GnssStatus", "GnssHeading", "degrees"),
    "Vehicle.CurrentLocation.Altitude": ("TCU_GnssStatus", "GnssAltitude", "m"),
    "Vehicle.CurrentLocation.GNSSReceiver.FixType": ("TCU_GnssStatus", "GnssFixType", None),
    "Vehicle.LowVoltageSystemState": ("VCU_PowertrainStatus", "IgnitionState", None),
    "Vehicle.Powertrain.Transmission.SelectedGear": ("VCU_PowertrainStatus", "SelectedGear", None),
    "Vehicle.Service.DistanceToService": ("CLU_ServiceInterval", "DistanceToService", "km"),
    "Vehicle.Service.TimeToService": ("CLU_ServiceInterval", "TimeToService", "s"),
    "Vehicle.Private.Crash.Severity": ("ACU_CrashStatus", "CrashSeverity", None),
    "Vehicle.Private.Crash.AirbagDeployed": ("ACU_CrashStatus", "AirbagDeployed", None),
    "Vehicle.Private.Diagnostics.DTC.Code": ("GW_DtcReport", "DtcCode", None),
    "Vehicle.OBD.Status.DTCCount": ("GW_DtcReport", "DtcCount", None),
}


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    """The demo DBC as shipped, loaded by cantools itself with its strict checks."""
    with as_file(data_file(DEMO_DBC)) as path:
        database = cantools.database.load_file(path, strict=True)
    assert isinstance(database, Database)
    yield database


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return demo_catalogue()


def test_messages_are_as_designed(db: Database) -> None:
    actual = {
        m.name: (m.frame_id, m.is_extended_frame, m.is_fd, m.length, m.cycle_time)
        for m in db.messages
    }
    assert actual == MESSAGES


def test_every_message_has_a_sender_a_comment_and_a_realistic_cycle(db: Database) -> None:
    nodes = {node.name for node in db.nodes}
    for message in db.messages:
        assert message.senders and set(message.senders) <= nodes, message.name
        assert message.comment, message.name
        assert message.cycle_time is not None and 10 <= message.cycle_time <= 1000, message.name


def test_every_signal_has_a_range_and_valid_names(db: Database) -> None:
    for message in db.messages:
        for signal in message.signals:
            assert signal.minimum is not None and signal.maximum is not None, signal.name
            assert signal.minimum < signal.maximum, signal.name
            raw_min, raw_max = _raw_limits(signal)
            for limit in (signal.minimum, signal.maximum):
                raw = (limit - signal.offset) / signal.scale
                assert raw_min - 1e-6 <= raw <= raw_max + 1e-6, (message.name, signal.name)


def test_signals_fit_and_do_not_overlap(db: Database) -> None:
    for message in db.messages:
        for selection, signals in _layouts(message):
            used: dict[int, str] = {}
            for signal in signals:
                for bit in _bits(signal):
                    assert 0 <= bit < 8 * message.length, (message.name, signal.name)
                    other = used.setdefault(bit, signal.name)
                    assert other == signal.name, (message.name, selection, signal.name, other)


def test_the_dbc_uses_every_feature_the_decoders_must_handle(db: Database) -> None:
    signals = [signal for message in db.messages for signal in message.signals]
    assert {signal.byte_order for signal in signals} == {"little_endian", "big_endian"}
    assert any(signal.is_signed for signal in signals)
    assert any(message.is_fd and message.length == 64 for message in db.messages)
    assert any(message.is_extended_frame for message in db.messages)

    accel = db.get_message_by_name("ACU_Acceleration")
    for name in ("LongitudinalAccel", "LateralAccel", "VerticalAccel"):
        signal = accel.get_signal_by_name(name)
        assert (signal.byte_order, signal.is_signed) == ("big_endian", True)

    voltage = db.get_message_by_name("BCM_LvBattery").get_signal_by_name("LvBatteryVoltage")
    assert voltage.is_float and voltage.length == 32
    assert [s.name for s in signals if s.is_float] == ["LvBatteryVoltage"]

    lat = db.get_message_by_name("TCU_GnssPosition").get_signal_by_name("GnssLatitude")
    assert (lat.is_signed, lat.scale, lat.length) == (True, 1e-7, 32)

    dtc = db.get_message_by_name("GW_DtcReport")
    assert dtc.is_multiplexed()
    assert [s.name for s in dtc.signals if s.is_multiplexer] == ["DtcSlot"]
    assert dtc.get_signal_by_name("DtcCount").multiplexer_ids == [0]
    for name in ("DtcCode", "DtcStatus", "DtcSeverity"):
        assert dtc.get_signal_by_name(name).multiplexer_ids == list(range(1, 33))
    assert [m.name for m in db.messages if m.is_multiplexed()] == ["GW_DtcReport"]


@pytest.mark.parametrize(
    ("message", "signal", "expected"),
    [
        ("VCU_PowertrainStatus", "IgnitionState", {0: "LOCK", 3: "ON", 4: "START"}),
        ("VCU_PowertrainStatus", "SelectedGear", {-1: "REVERSE", 0: "NEUTRAL", 126: "PARK"}),
        ("ACU_CrashStatus", "CrashSeverity", {0: "NO_CRASH", 3: "SEVERE"}),
        ("TCU_GnssStatus", "GnssFixType", {0: "NONE", 2: "THREE_D"}),
        ("GW_DtcReport", "DtcSeverity", {3: "CHECK_IMMEDIATELY"}),
        ("OBC_ChargingStatus", "ChargingState", {2: "CHARGING", 5: "FAULT"}),
    ],
)
def test_value_tables(db: Database, message: str, signal: str, expected: dict[int, str]) -> None:
    choices = db.get_message_by_name(message).get_signal_by_name(signal).choices
    assert choices is not None
    assert {value: str(choices[value]) for value in expected} == expected


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_encode_decode_round_trip_at_the_limits(db: Database, name: str) -> None:
    message = db.get_message_by_name(name)
    for selection, signals in _layouts(message):
        for pick in (0.0, 1.0, 0.37):
            values = {s.name: _physical(s, pick) for s in signals}
            if selection is not None:
                values[selection[0]] = selection[1]
            data = message.encode(values, strict=True)
            assert len(data) == message.length
            decoded = message.decode(data, decode_choices=False)
            assert isinstance(decoded, dict) and decoded.keys() == values.keys()
            for signal_name, value in values.items():
                signal = message.get_signal_by_name(signal_name)
                assert decoded[signal_name] == pytest.approx(value, abs=_tolerance(signal))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_raw_values_round_trip(db: Database, data: st.DataObject) -> None:
    message = db.get_message_by_name(data.draw(st.sampled_from(sorted(MESSAGES))))
    selection, signals = data.draw(st.sampled_from(list(_layouts(message))))
    raw: dict[str, Any] = {}
    for signal in signals:
        if signal.is_float:
            raw[signal.name] = data.draw(st.floats(width=32, allow_nan=False))
        else:
            raw[signal.name] = data.draw(st.integers(*_raw_limits(signal)))
    if selection is not None:
        raw[selection[0]] = selection[1]
    payload = message.encode(raw, scaling=False, strict=False)
    assert message.decode(payload, scaling=False, decode_choices=False) == raw


def test_the_map_covers_what_the_rules_and_simulator_need(catalogue: Catalogue) -> None:
    for vss, (message, signal, unit) in REQUIRED_VSS.items():
        mapping = catalogue.mappings[vss]
        assert (mapping.message, mapping.signal, mapping.unit) == (message, signal, unit), vss
    time_to_service = catalogue.mappings["Vehicle.Service.TimeToService"]
    assert (time_to_service.scale, time_to_service.offset) == (86400.0, 0.0)
    assert time_to_service.apply(-3) == -259200.0


def test_every_mapped_signal_exists_and_units_are_vss_spellings(catalogue: Catalogue) -> None:
    vss_units = {"km/h", "km", "m", "s", "kPa", "celsius", "percent", "V", "A", "m/s^2"}
    vss_units |= {"degrees", "rpm"}
    for vss, mapping in catalogue.mappings.items():
        message = catalogue.database.get_message_by_name(mapping.message)
        signal = message.get_signal_by_name(mapping.signal)
        assert mapping.unit is None or mapping.unit in vss_units, vss
        assert signal.choices is None or mapping.unit is None, vss
        assert catalogue.vss_path(mapping.message, mapping.signal) == vss


def test_private_paths_are_only_used_where_vss_has_none(catalogue: Catalogue) -> None:
    private = sorted(vss for vss in catalogue.mappings if vss.startswith("Vehicle.Private."))
    assert private == [
        "Vehicle.Private.Charging.State",
        "Vehicle.Private.Crash.AirbagDeployed",
        "Vehicle.Private.Crash.DeltaV",
        "Vehicle.Private.Crash.EventCounter",
        "Vehicle.Private.Crash.Severity",
        "Vehicle.Private.Crash.Type",
        "Vehicle.Private.Diagnostics.DTC.Code",
        "Vehicle.Private.Diagnostics.DTC.Severity",
        "Vehicle.Private.Diagnostics.DTC.Slot",
        "Vehicle.Private.Diagnostics.DTC.SourceEcu",
        "Vehicle.Private.Diagnostics.DTC.Status",
    ]


# --- helpers ---------------------------------------------------------------------------


def _layouts(message: Message) -> Iterator[tuple[tuple[str, int] | None, list[Signal]]]:
    """Each set of signals present together: (multiplexor, value) or None, and the signals."""
    plain = [s for s in message.signals if s.multiplexer_ids is None]
    if not message.is_multiplexed():
        yield None, plain
        return
    (multiplexor,) = [s for s in message.signals if s.is_multiplexer]
    values = sorted({v for s in message.signals for v in s.multiplexer_ids or ()})
    for value in values:
        chosen = [s for s in message.signals if value in (s.multiplexer_ids or ())]
        yield (multiplexor.name, value), plain + chosen


def _bits(signal: Signal) -> list[int]:
    """The bit positions of a signal, numbered as in the DBC (bit 7 is byte 0's MSB)."""
    if signal.byte_order == "little_endian":
        return list(range(signal.start, signal.start + signal.length))
    bits, bit = [], signal.start
    for _ in range(signal.length):
        bits.append(bit)
        bit = bit + 15 if bit % 8 == 0 else bit - 1
    return bits


def _raw_limits(signal: Signal) -> tuple[int, int]:
    if signal.is_float:
        return -(2**127), 2**127
    if signal.is_signed:
        return -(2 ** (signal.length - 1)), 2 ** (signal.length - 1) - 1
    return 0, 2**signal.length - 1


def _physical(signal: Signal, pick: float) -> float:
    """A value between the signal's minimum (0.0) and maximum (1.0), on its raw grid."""
    assert signal.minimum is not None and signal.maximum is not None
    value = signal.minimum + pick * (signal.maximum - signal.minimum)
    if signal.is_float:
        return value
    raw = round((value - signal.offset) / signal.scale)
    physical = raw * signal.scale + signal.offset
    if physical > signal.maximum:
        physical -= signal.scale
    if physical < signal.minimum:
        physical += signal.scale
    return float(physical)


def _tolerance(signal: Signal) -> float:
    if signal.is_float:
        return 1e-6 * max(1.0, abs(signal.maximum or 0.0))
    return math.fabs(signal.scale) / 1000
