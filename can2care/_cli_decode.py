"""``can2care decode``: CAN logs to a table of decoded signals, for fleet engineers."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode CAN log files to CSV or Parquet with a DBC",
        description=(
            "Decode candump (.log), Vector ASC/BLF and PCAN TRC logs (each optionally .gz) "
            "with a DBC. Output by the suffix of OUT (.csv or .parquet), long form with the "
            "columns timestamp,frame_id,message,signal,value (one row per decoded signal "
            "sample, in log order), or --wide with one column per signal. With --map only "
            "the mapped signals are written, named by their VSS path, with the map's unit "
            "transform applied. Bad log lines are skipped, counted and reported."
        ),
    )
    parser.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="log files, in order")
    parser.add_argument("--dbc", type=Path, required=True, help="the DBC file")
    parser.add_argument("--map", type=Path, default=None, help="a signal map (TOML)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="output file: .csv or .parquet",
    )
    parser.add_argument(
        "--wide", action="store_true", help="one row per frame, one column per signal"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_decode)


def _decode(args: argparse.Namespace) -> int:
    from dbc import load_catalogue
    from edge_agent.decoder import BatchDecoder
    from edge_agent.export import ExportError, open_writer
    from edge_agent.export.pipeline import decode_logs
    from edge_agent.logs import LogError

    catalogue = load_catalogue(args.dbc, args.map)
    decoder = BatchDecoder(catalogue.database)
    rename = None
    if args.map is not None:
        rename = {
            (m.message, m.signal): (m.vss, m.scale, m.offset) for m in catalogue.mappings.values()
        }
    try:
        writer = open_writer(args.output, decoder, wide=args.wide, rename=rename)
    except (ExportError, OSError) as exc:
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=1, unit="B", unit_scale=True, desc="decoding", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        summary = decode_logs(args.logs, decoder, writer, progress=progress)
    except LogError as exc:
        # An earlier output of the name stays as it was; the log's error is the one to tell.
        with contextlib.suppress(Exception):
            writer.discard()
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        writer.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
    writer.close()
    _print_summary(summary, args.output)
    return 0


def _print_summary(summary: Any, output: Path) -> None:
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    print(f"frames read      {summary.frames:>12,}  ({rate:,.0f} frames/s)")
    print(f"decoded          {summary.decoded:>12,}")
    unknown_ids = ", ".join(_format_id(k) for k in summary.unknown_ids[:10])
    more = " ..." if len(summary.unknown_ids) > 10 else ""
    print(
        f"unknown ids      {summary.unknown:>12,}  frames"
        + (f" ({len(summary.unknown_ids)} ids: {unknown_ids}{more})" if unknown_ids else "")
    )
    print(f"remote/error     {summary.skipped:>12,}")
    print(f"truncated        {summary.truncated:>12,}")
    print(f"bad lines        {summary.bad_lines:>12,}")
    for report in summary.reports:
        for bad in report.bad_lines[:5]:
            where = f"line {bad.line}" if bad.line is not None else f"offset {bad.offset}"
            print(f"  {report.path}:{where}: {bad.reason}: {bad.text}")
        if report.bad_line_count > 5:
            print(f"  {report.path}: ... {report.bad_line_count - 5} more bad lines")
    print(f"samples decoded  {summary.samples:>12,}")
    print(f"samples written  {summary.written:>12,}  to {output}")


def _format_id(key: int) -> str:
    return f"0x{key - (1 << 32):08X}x" if key >= 1 << 32 else f"0x{key:03X}"
