"""``can2care dbc``: inspect a DBC and its signal map to VSS paths."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cantools.database.can import Message, Signal

    from dbc import Catalogue

_MAP_SUFFIX = ".map.toml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dbc",
        help="inspect a DBC and its signal map to VSS paths",
        description="Inspect DBC files and the signal maps that name their signals with "
        "COVESA VSS paths (docs/signal-map.md).",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="list the messages and signals of a DBC, with their VSS paths",
        description="List the messages and signals of a DBC and, with a signal map, each "
        "signal's VSS path. The map defaults to NAME.map.toml next to NAME.dbc if it exists.",
    )
    show.add_argument(
        "dbc",
        nargs="?",
        type=Path,
        default=None,
        metavar="DBC",
        help="the DBC file (default: the one --map names, else the demo vehicle)",
    )
    show.add_argument("--map", type=Path, default=None, metavar="MAP", help="the signal map")
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    from dbc import demo_catalogue, load_catalogue

    dbc_path: Path | None = args.dbc
    map_path: Path | None = args.map
    if dbc_path is None and map_path is None:
        catalogue = demo_catalogue()
    else:
        if map_path is None and dbc_path is not None:
            sibling = dbc_path.with_name(dbc_path.name.removesuffix(".dbc") + _MAP_SUFFIX)
            map_path = sibling if sibling.is_file() else None
        catalogue = load_catalogue(dbc_path, map_path)
    for line in render(catalogue):
        print(line)
    return 0


def render(catalogue: Catalogue) -> list[str]:
    """A catalogue as aligned text: a summary, then each message and its signals."""
    database = catalogue.database
    messages = sorted(database.messages, key=lambda m: (m.is_extended_frame, m.frame_id))
    signal_count = sum(len(message.signals) for message in messages)
    lines = [
        f"DBC        {catalogue.dbc_source}",
        f"map        {catalogue.map_source or '(none)'}",
        f"catalogue  {catalogue.catalogue_id}",
        f"contents   {len(messages)} messages, {signal_count} signals, "
        f"{len(catalogue.mappings)} mapped to VSS",
    ]
    message_rows = [_message_row(message) for message in messages]
    message_widths = _widths(message_rows)
    with_vss = catalogue.map_source is not None
    header = ["signal", "bits", "order", "type", "scale", "offset", "unit", "range"]
    header += ["choices", "multiplexing"] + (["VSS path"] if with_vss else [])
    signal_rows = {
        message.name: [
            _signal_row(catalogue, message, signal, with_vss) for signal in message.signals
        ]
        for message in messages
    }
    signal_widths = _widths([header, *(row for rows in signal_rows.values() for row in rows)])
    for message, row in zip(messages, message_rows, strict=True):
        lines += ["", _join(row, message_widths)]
        if signal_rows[message.name]:
            lines.append("    " + _join(header, signal_widths))
            lines += ["    " + _join(r, signal_widths) for r in signal_rows[message.name]]
    return lines


def _message_row(message: Message) -> list[str]:
    width = 8 if message.is_extended_frame else 3
    frame = ("extended" if message.is_extended_frame else "standard") + (
        " FD" if message.is_fd else ""
    )
    cycle = f"{message.cycle_time} ms" if message.cycle_time else "no cycle"
    senders = ",".join(message.senders) or "-"
    return [
        message.name,
        f"0x{message.frame_id:0{width}X}",
        frame,
        f"{message.length} bytes",
        cycle,
        f"from {senders}",
    ]


def _signal_row(
    catalogue: Catalogue, message: Message, signal: Signal, with_vss: bool
) -> list[str]:
    kind = "float" if signal.is_float else ("signed" if signal.is_signed else "unsigned")
    limits = (signal.minimum, signal.maximum)
    value_range = "-" if limits == (None, None) else "..".join(_number(x) for x in limits)
    choices = str(len(signal.choices)) if signal.choices else "-"
    row = [
        signal.name,
        f"{signal.start}|{signal.length}",
        "big" if signal.byte_order == "big_endian" else "little",
        kind,
        _number(signal.scale),
        _number(signal.offset),
        signal.unit or "-",
        value_range,
        choices,
        _multiplexing(signal),
    ]
    if with_vss:
        row.append(catalogue.vss_path(message.name, signal.name) or "-")
    return row


def _multiplexing(signal: Signal) -> str:
    if signal.is_multiplexer:
        return "multiplexor"
    if signal.multiplexer_signal is None:
        return "-"
    return f"{signal.multiplexer_signal}={_ranges(signal.multiplexer_ids or [])}"


def _ranges(values: Iterable[int]) -> str:
    """Integers as compact ranges: [0, 3, 4, 5] -> "0,3-5"."""
    parts: list[str] = []
    run: list[int] = []
    for value in sorted(values):
        if run and value != run[-1] + 1:
            parts.append(_run(run))
            run = []
        run.append(value)
    if run:
        parts.append(_run(run))
    return ",".join(parts)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.12g}"


def _widths(rows: Iterable[Sequence[str]]) -> list[int]:
    widths: list[int] = []
    for row in rows:
        for index, cell in enumerate(row):
            if index == len(widths):
                widths.append(0)
            widths[index] = max(widths[index], len(cell))
    return widths


def _join(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
