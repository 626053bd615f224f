"""Wire format size and speed: bytes per sample against JSON and a FleetWise-style protobuf.

Simulates an hour of the demo EV on the WLTP-like cycle (seed 1), generates its CAN traffic,
decodes it with the batch decoder and hands the decoded stream to each sample source, which
cuts what it keeps of every mapped (VSS) signal into telemetry batches of 10 s. For each
source, every batch is encoded in each format and the table gives payload bytes per sample:

- can2care wire format version 1 (as published, and with its body stored uncompressed);
- JSON, one object per sample ``{"signal": vss, "t": ms, "v": physical}``, plain and zlib'd;
- JSON, columnar per signal ``{vss: {"t": [...], "v": [...]}}``, plain and zlib'd;
- AWS IoT FleetWise's ``VehicleData`` protobuf (one ``CapturedSignal {sint64
  relative_time_ms = 1; uint32 signal_id = 2; double double_value = 3}`` per sample, plus
  the batch header fields), encoded by hand in protobuf wire format, plain and zlib'd.

Encode and decode throughput of the wire codec are best of three.

    python -m benchmarks.bench_wire [--hours 1] [--batch-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks._timing import best_of
from dbc import Catalogue, demo_catalogue
from edge_agent.decoder import BatchDecoder, DecodedBatch
from edge_agent.wire import (
    Series,
    TelemetryBatch,
    WireSchema,
    decode_telemetry,
    encode_telemetry,
)
from simulators import TrafficGenerator, VehicleConfig, simulate

_TARGET = 1.5  # bytes per sample on the wire
_CAMPAIGN = "arn:aws:iotfleetwise:eu-central-1:123456789012:campaign/can2care-demo-1700000000000"
_DECODER = "arn:aws:iotfleetwise:eu-central-1:123456789012:decoder-manifest/demo-1700000000000"


@dataclass(frozen=True, slots=True, eq=False)
class Drive:
    """A simulated drive and what decodes it; `decoded` replays it chunk by chunk."""

    catalogue: Catalogue
    schema: WireSchema
    decoder: BatchDecoder
    traffic: TrafficGenerator
    start_ms: int
    duration_ms: int

    def decoded(self) -> Iterator[DecodedBatch]:
        for frames in self.traffic.batches(chunk_seconds=60.0):
            yield self.decoder.decode(frames)


# A sample source: the telemetry batches a drive produces, batch_ms of time per batch.
Source = Callable[[Drive, int], list[TelemetryBatch]]


def full_rate(drive: Drive, batch_ms: int) -> list[TelemetryBatch]:
    """Every decoded sample of every mapped signal."""
    schema = drive.schema
    infos = [drive.decoder.signal_info(f"{s.message}.{s.signal}") for s in schema.signals]
    times: list[list[npt.NDArray[np.int64]]] = [[] for _ in schema.signals]
    raws: list[list[npt.NDArray[np.int64]]] = [[] for _ in schema.signals]
    for decoded in drive.decoded():
        for number, info in enumerate(infos):
            column = decoded.column(info)
            if len(column.raw):
                times[number].append(np.rint(column.timestamps * 1000.0).astype(np.int64))
                raws[number].append(column.raw)
    columns = [
        (number, np.concatenate(t), np.concatenate(r))
        for number, (t, r) in enumerate(zip(times, raws, strict=True))
        if t
    ]
    return _cut(schema, columns, drive.start_ms, drive.duration_ms, batch_ms)


def _cut(
    schema: WireSchema,
    columns: list[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    start_ms: int,
    duration_ms: int,
    batch_ms: int,
) -> list[TelemetryBatch]:
    """Per-signal columns cut into batches of ``batch_ms``, from ``start_ms``."""
    edges = start_ms + np.arange(0, duration_ms + batch_ms + 1, batch_ms, dtype=np.int64)
    cuts = [np.searchsorted(t, edges) for _, t, _ in columns]
    batches: list[TelemetryBatch] = []
    for k in range(len(edges) - 1):
        series = tuple(
            Series(number, t[c[k] : c[k + 1]], r[c[k] : c[k + 1]])
            for (number, t, r), c in zip(columns, cuts, strict=True)
            if c[k + 1] > c[k]
        )
        if series:
            batches.append(TelemetryBatch(schema.catalogue_id, len(batches), series))
    return batches


def agent_sampling(drive: Drive, batch_ms: int) -> list[TelemetryBatch]:
    """What the agent sends with the shipped example configuration (deploy/): its sampling
    policies and heartbeat, selected by `edge_agent.sampling.Sampler`, cut into batches by
    data time as the agent does."""
    from edge_agent.config import load_config
    from edge_agent.sampling import Sampler, group_series

    example = Path(__file__).resolve().parent.parent / "deploy" / "agent.example.toml"
    config = load_config(example, env={}, overrides={"mqtt.tls": False})
    sampler = Sampler(drive.schema, drive.decoder, config.sampling)
    parts: list[tuple[npt.NDArray[np.int64], ...]] = []
    for decoded in drive.decoded():
        sampler.feed(decoded)
        for series in sampler.take():
            n = len(series.times_ms)
            parts.append((np.full(n, series.signal, np.int64), series.times_ms, series.raw))
    if not parts:
        return []
    sig, times, raw = (np.concatenate([p[k] for p in parts]) for k in range(3))
    columns = [(s.signal, s.times_ms, s.raw) for s in group_series(sig, times, raw)]
    return _cut(drive.schema, columns, drive.start_ms, drive.duration_ms, batch_ms)


SOURCES: dict[str, Source] = {"full rate": full_rate, "agent sampling": agent_sampling}


# -- the formats ------------------------------------------------------------------------


def json_rows(batch: TelemetryBatch, schema: WireSchema) -> bytes:
    samples = []
    for s in batch.series:
        vss = schema.signals[s.signal].vss
        values = schema.physical(s.signal, s.raw).tolist()
        samples += [
            {"signal": vss, "t": t, "v": v}
            for t, v in zip(s.times_ms.tolist(), values, strict=True)
        ]
    document = {"catalogue_id": batch.catalogue_id, "sequence": batch.sequence, "samples": samples}
    return json.dumps(document, separators=(",", ":")).encode()


def json_columns(batch: TelemetryBatch, schema: WireSchema) -> bytes:
    signals = {
        schema.signals[s.signal].vss: {
            "t": s.times_ms.tolist(),
            "v": schema.physical(s.signal, s.raw).tolist(),
        }
        for s in batch.series
    }
    document = {"catalogue_id": batch.catalogue_id, "sequence": batch.sequence, "signals": signals}
    return json.dumps(document, separators=(",", ":")).encode()


def _varints(values: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Protobuf varints of ``values`` as rows of a byte matrix, and each row's length."""
    sizes = np.ones(len(values), np.int64)
    for k in range(1, 10):
        sizes += values >= np.uint64(1 << (7 * k))
    width = int(sizes.max(initial=1))
    groups = np.zeros((len(values), width), np.uint8)
    for k in range(width):
        more = np.where(sizes > k + 1, 0x80, 0).astype(np.uint8)
        groups[:, k] = ((values >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8) | more
    return groups, sizes


def _varint(value: int) -> bytes:
    groups, sizes = _varints(np.array([value], np.uint64))
    return groups[0, : sizes[0]].tobytes()


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (string or message) with a one-byte tag."""
    return bytes([tag]) + _varint(len(payload)) + payload


def _scalar(tag: int, value: int) -> bytes:
    """A varint protobuf field; proto3 leaves out zero."""
    return bytes([tag]) + _varint(value) if value else b""


def fleetwise(batch: TelemetryBatch, schema: WireSchema) -> bytes:
    """VehicleData in protobuf wire format, proto3 rules (zero scalars are left out)."""
    firsts = [int(s.times_ms[0]) for s in batch.series if len(s.times_ms)]
    event_ms = min(firsts, default=0)
    times = np.concatenate([s.times_ms for s in batch.series]) - event_ms
    ids = np.concatenate([np.full(len(s.raw), s.signal, np.uint64) for s in batch.series])
    values = np.concatenate([schema.physical(s.signal, s.raw) for s in batch.series])
    n = len(times)
    zigzag = (times.view(np.uint64) << np.uint64(1)) ^ (times >> 63).view(np.uint64)
    t_bytes, t_sizes = _varints(zigzag)
    t_sizes = np.where(zigzag != 0, t_sizes, 0)  # relative_time_ms = 0 is not sent
    i_bytes, i_sizes = _varints(ids)
    i_sizes = np.where(ids != 0, i_sizes, 0)  # signal_id = 0 is not sent
    inner = (t_sizes > 0) + t_sizes + (i_sizes > 0) + i_sizes + 9  # < 128: one length byte
    parts = [
        (np.full((n, 1), 0x2A, np.uint8), np.ones(n, np.int64)),  # captured_signals = 5
        (inner.astype(np.uint8)[:, None], np.ones(n, np.int64)),
        (np.full((n, 1), 0x08, np.uint8), (t_sizes > 0).astype(np.int64)),
        (t_bytes, t_sizes),
        (np.full((n, 1), 0x10, np.uint8), (i_sizes > 0).astype(np.int64)),
        (i_bytes, i_sizes),
        (np.full((n, 1), 0x19, np.uint8), np.ones(n, np.int64)),
        (values.astype("<f8").view(np.uint8).reshape(n, 8), np.full(n, 8, np.int64)),
    ]
    matrix = np.concatenate([p for p, _ in parts], axis=1)
    mask = np.concatenate(
        [np.arange(p.shape[1])[None, :] < size[:, None] for p, size in parts], axis=1
    )
    header = (
        _field(0x0A, _CAMPAIGN.encode())
        + _field(0x12, _DECODER.encode())
        + _scalar(0x18, batch.sequence & 0xFFFFFFFF)
        + _scalar(0x20, event_ms)
    )
    body: bytes = matrix[mask].tobytes()
    return header + body


def _zlib(
    encode: Callable[[TelemetryBatch, WireSchema], bytes],
) -> Callable[[TelemetryBatch, WireSchema], bytes]:
    return lambda batch, schema: zlib.compress(encode(batch, schema), 9)


FORMATS: dict[str, Callable[[TelemetryBatch, WireSchema], bytes]] = {
    "can2care wire v1": encode_telemetry,
    "can2care wire v1, body stored": lambda b, s: encode_telemetry(b, s, compress=False),
    "JSON, object per sample": json_rows,
    "JSON, object per sample + zlib": _zlib(json_rows),
    "JSON, columnar": json_columns,
    "JSON, columnar + zlib": _zlib(json_columns),
    "FleetWise VehicleData protobuf": fleetwise,
    "FleetWise VehicleData protobuf + zlib": _zlib(fleetwise),
}


# -- measuring --------------------------------------------------------------------------


def report(name: str, batches: list[TelemetryBatch], schema: WireSchema, seconds: float) -> None:
    samples = sum(b.samples for b in batches)
    print(
        f"\nsource: {name}: {len(batches):,} batches, {samples:,} samples "
        f"({samples / seconds:,.0f} per second of driving)"
    )
    print(f"  {'format':<40}{'bytes':>14}{'B/sample':>10}{'x ours':>9}")
    ours = 0
    for label, encode in FORMATS.items():
        size = sum(len(encode(b, schema)) for b in batches)
        ours = ours or size
        print(f"  {label:<40}{size:>14,}{size / samples:>10.3f}{size / ours:>9.1f}")
    per_sample = ours / samples
    verdict = "met" if per_sample <= _TARGET else "MISSED"
    print(f"  target <= {_TARGET} bytes/sample: {verdict} ({per_sample:.3f})")
    payloads = [encode_telemetry(b, schema) for b in batches]
    encoding = best_of(3, lambda: [encode_telemetry(b, schema) for b in batches])
    decoding = best_of(3, lambda: [decode_telemetry(p, schema) for p in payloads])
    print(
        f"  wire codec: encode {samples / encoding:,.0f} samples/s, "
        f"decode {samples / decoding:,.0f} samples/s (best of 3)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--batch-seconds", type=float, default=10.0)
    args = parser.parse_args()
    catalogue = demo_catalogue()
    config = VehicleConfig(variant="ev", cycle="wltp", duration=args.hours * 3600, seed=1)
    drive = Drive(
        catalogue=catalogue,
        schema=WireSchema.from_catalogue(catalogue),
        decoder=BatchDecoder(catalogue.database),
        traffic=TrafficGenerator(simulate(config).trace, catalogue.database),
        start_ms=round(config.start_time * 1000),
        duration_ms=round(config.duration * 1000),
    )
    print(
        f"{args.hours:g} h of the demo EV (wltp, seed 1), {drive.traffic.frame_count:,} frames, "
        f"{len(drive.schema.signals)} mapped signals, batches of {args.batch_seconds:g} s"
    )
    for name, source in SOURCES.items():
        batches = source(drive, round(args.batch_seconds * 1000))
        report(name, batches, drive.schema, config.duration)


if __name__ == "__main__":
    main()
