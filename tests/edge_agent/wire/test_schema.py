"""The wire schema: numbering, the demo catalogue, and physical values equal to the decoder's."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest
from cantools.database.can import Database, Message, Signal
from cantools.database.conversion import BaseConversion
from hypothesis import given, settings
from hypothesis import strategies as st

from dbc import Catalogue, demo_catalogue
from edge_agent.decoder import BatchDecoder, DecodedBatch
from edge_agent.frames import FrameBatch
from edge_agent.wire import (
    Series,
    SignalSpec,
    TelemetryBatch,
    UnknownSignalError,
    WireError,
    WireSchema,
    decode_telemetry,
    encode_telemetry,
)
from edge_agent.wire.schema import SignalKind
from simulators import TrafficGenerator, VehicleConfig, simulate

from ._helpers import CATALOGUE_ID, MIXED, spec


@functools.cache
def demo() -> tuple[Catalogue, WireSchema]:
    catalogue = demo_catalogue()
    return catalogue, WireSchema.from_catalogue(catalogue)


@functools.cache
def drive(variant: str) -> tuple[BatchDecoder, DecodedBatch]:
    catalogue = demo()[0]
    config = VehicleConfig(variant=variant, cycle="wltp", duration=120, seed=1)  # type: ignore[arg-type]
    frames = TrafficGenerator(simulate(config).trace, catalogue.database).all_frames()
    decoder = BatchDecoder(catalogue.database)
    return decoder, decoder.decode(frames)


def expected(
    catalogue: Catalogue, vss: str, values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The decoder's values after the map's transform, as `SignalMapping.apply` computes it."""
    mapping = catalogue.mappings[vss]
    return np.array([mapping.apply(float(v)) for v in values], np.float64)


# -- the demo catalogue -----------------------------------------------------------------


def test_demo_schema_numbers_vss_paths_in_canonical_order() -> None:
    catalogue, schema = demo()
    assert schema.catalogue_id == catalogue.catalogue_id
    assert len(schema.signals) == len(catalogue.mappings) == 82
    assert [s.vss for s in schema.signals] == sorted(catalogue.mappings)
    assert [s.number for s in schema.signals] == list(range(82))
    # the catalogue id's canonical document lists the signals in the same order
    canonical = [[m.vss] for m in sorted(catalogue.mappings.values(), key=lambda m: m.vss)]
    assert [s.vss for s in schema.signals] == [c[0] for c in json.loads(json.dumps(canonical))]


def test_demo_schema_carries_the_dbc_and_the_map() -> None:
    _, schema = demo()
    voltage = schema.spec("Vehicle.LowVoltageBattery.CurrentVoltage")
    assert (voltage.kind, voltage.length, voltage.is_signed) == ("float32", 32, True)
    assert (voltage.message, voltage.signal, voltage.unit) == (
        "BCM_LvBattery",
        "LvBatteryVoltage",
        "V",
    )
    service = schema.spec("Vehicle.Service.TimeToService")
    assert (service.vss_scale, service.unit, service.is_signed) == (86400.0, "s", True)
    tyre = schema.spec("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Temperature")
    assert (tyre.scale, tyre.offset, tyre.unit) == (1.0, -40.0, "celsius")
    severity = schema.spec("Vehicle.Private.Crash.Severity")
    assert severity.choices[0] == "NO_CRASH" and "SEVERE" in severity.choices.values()
    assert schema.label(severity.number, 0) == "NO_CRASH"
    assert schema.label(severity.number, 7) is None
    assert schema.label(schema.spec("Vehicle.Speed").number, 0) is None


def test_unknown_paths_and_numbers() -> None:
    _, schema = demo()
    with pytest.raises(
        UnknownSignalError, match=r"no signal 'Vehicle\.Nope' in the schema"
    ) as caught:
        schema.spec("Vehicle.Nope")
    assert isinstance(caught.value, KeyError)
    with pytest.raises(KeyError, match="no signal number 82"):
        schema.physical(82, [0])
    with pytest.raises(UnknownSignalError):
        schema.label(-1, 0)


@pytest.mark.parametrize("variant", ["ev", "combustion"])
def test_physical_values_equal_the_decoders(variant: str) -> None:
    catalogue, schema = demo()
    decoder, decoded = drive(variant)
    checked = 0
    for spec_ in schema.signals:
        column = decoded.column(decoder.signal_info(f"{spec_.message}.{spec_.signal}"))
        if not len(column.raw):
            continue
        want = expected(catalogue, spec_.vss, column.values)
        np.testing.assert_array_equal(schema.physical(spec_.number, column.raw), want)
        checked += 1
    assert checked >= 60


def test_physical_values_survive_the_wire() -> None:
    catalogue, schema = demo()
    decoder, decoded = drive("ev")
    series = []
    for spec_ in schema.signals:
        column = decoded.column(decoder.signal_info(f"{spec_.message}.{spec_.signal}"))
        times = np.rint(column.timestamps * 1000.0).astype(np.int64)
        series.append(Series(spec_.number, times, column.raw))
    batch = TelemetryBatch(schema.catalogue_id, 1, tuple(series))
    back = decode_telemetry(encode_telemetry(batch, schema), schema)
    for sent, got in zip(series, back.series, strict=True):
        spec_ = schema.signals[got.signal]
        column = decoded.column(decoder.signal_info(f"{spec_.message}.{spec_.signal}"))
        np.testing.assert_array_equal(
            schema.physical(got.signal, got.raw), expected(catalogue, spec_.vss, column.values)
        )
        np.testing.assert_array_equal(got.times_ms, sent.times_ms)


# -- conversions against the decoder on layouts the demo lacks --------------------------

_LAYOUTS = [
    ("U64", 64, False, False, 3, 5),  # whole factor beyond 2**53: exact integers
    ("S64", 64, True, False, 3, 0.5),  # whole factor, fractional offset
    ("U64Lin", 64, False, False, 0.1, -2.5),
    ("U54", 54, False, False, 3, 0.5),
    ("S12", 12, True, False, 0.25, -100),
    ("F32", 32, False, True, 1, 0),
    ("F32S", 32, True, True, 0.5, 1),
    ("F64", 64, False, True, 1, 0),
    ("F64S", 64, True, True, 2, -1),
]


@functools.cache
def layouts() -> tuple[BatchDecoder, WireSchema]:
    messages = []
    specs = []
    for i, (name, length, signed, is_float, scale, offset) in enumerate(_LAYOUTS):
        conversion = BaseConversion.factory(scale=scale, offset=offset, is_float=is_float)
        signal = Signal(name, 0, length, is_signed=signed, conversion=conversion)
        messages.append(Message(frame_id=0x100 + i, name=f"M{i}", length=8, signals=[signal]))
        kind: SignalKind = "int" if not is_float else "float32" if length == 32 else "float64"
        specs.append(
            SignalSpec(
                i,
                f"Vehicle.Private.L{i}",
                f"M{i}",
                name,
                kind,
                signed,
                length,
                float(scale),
                float(offset),
                1.0,
                0.0,
                None,
                {},
            )
        )
    return BatchDecoder(Database(messages=messages)), WireSchema(CATALOGUE_ID, specs)


@settings(max_examples=200)
@given(st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=20))
def test_physical_matches_the_decoder_on_wide_and_float_signals(payloads: list[bytes]) -> None:
    decoder, schema = layouts()
    rows = [
        (float(k), 0x100 + i, 0, p) for i in range(len(_LAYOUTS)) for k, p in enumerate(payloads)
    ]
    decoded = decoder.decode(FrameBatch.from_rows(rows))
    for spec_ in schema.signals:
        column = decoded.signal(f"{spec_.message}.{spec_.signal}")
        np.testing.assert_array_equal(schema.physical(spec_.number, column.raw), column.values)


def test_vss_transform_follows_the_dbc_conversion() -> None:
    days = SignalSpec(
        0,
        "Vehicle.Service.TimeToService",
        "M",
        "D",
        "int",
        True,
        16,
        1.0,
        0.0,
        86400.0,
        0.0,
        "s",
        {},
    )
    schema = WireSchema(CATALOGUE_ID, [days])
    assert schema.physical(0, [-2, 0, 3]).tolist() == [-172800.0, 0.0, 259200.0]


def test_unsigned_64_bit_labels_unwrap() -> None:
    big = SignalSpec(
        0,
        "Vehicle.Private.Big",
        "M",
        "B",
        "int",
        False,
        64,
        1.0,
        0.0,
        1.0,
        0.0,
        None,
        {2**64 - 1: "ALL_ONES"},
    )
    assert WireSchema(CATALOGUE_ID, [big]).label(0, -1) == "ALL_ONES"


# -- construction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalogue_id", "specs", "problem"),
    [
        ("0123", [spec(0)], "16 lower-case hex digits"),
        ("0123456789ABCDEF", [spec(0)], "16 lower-case hex digits"),
        (CATALOGUE_ID, [spec(1)], "has number 1"),
        (CATALOGUE_ID, [spec(0, "int", 65)], "65 bits"),
        (CATALOGUE_ID, [spec(0, "float32", 64)], "float32 of 64 bits"),
        (CATALOGUE_ID, [spec(0, "float16", 16)], "kind 'float16'"),
        (CATALOGUE_ID, [spec(0), replace(spec(1), vss=spec(0).vss)], "twice"),
    ],
)
def test_invalid_schemas(catalogue_id: str, specs: list[SignalSpec], problem: str) -> None:
    with pytest.raises(WireError, match=problem):
        WireSchema(catalogue_id, specs)


def test_spec_is_frozen_and_its_value_table_read_only() -> None:
    s = MIXED.signals[0]
    with pytest.raises(AttributeError):
        s.number = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.choices[1] = "x"  # type: ignore[index]
    assert (s.raw_min, s.raw_max) == (-32768, 32767)
    assert (MIXED.signals[4].raw_min, MIXED.signals[4].raw_max) == (-(2**63), 2**63 - 1)
    assert (MIXED.signals[5].raw_min, MIXED.signals[5].raw_max) == (0, 1)


def test_the_package_imports_without_numba() -> None:
    """The cloud installs no numba: the wire codec and its schema must not need it."""
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "from dbc import demo_catalogue\n"
        "from edge_agent.wire import WireSchema\n"
        "print(len(WireSchema.from_catalogue(demo_catalogue()).signals))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "82"
