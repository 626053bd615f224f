"""The signal catalogue: a DBC, its map to COVESA VSS paths, and an id for both.

`load_catalogue` reads a DBC and optionally its signal map; `demo_catalogue` reads the demo
vehicle shipped with this package. The parsing and checking underneath take bytes and text,
so a catalogue read from files and one built from package data are the same.

The ``catalogue_id`` names a catalogue's content: the edge tags what it publishes with it and
the cloud checks it, so it depends only on what decoding depends on (see docs/signal-map.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

from ._dbc_text import parse_dbc
from ._errors import DbcError, SignalMapError
from ._signal_map import ParsedMap, SignalMapping, check_against, parse_signal_map

if TYPE_CHECKING:
    from cantools.database.can import Database

__all__ = ["DEMO_DBC", "DEMO_MAP", "Catalogue", "SignalMapping", "demo_catalogue", "load_catalogue"]

log = logging.getLogger(__name__)

DEMO_DBC = "demo_vehicle.dbc"
DEMO_MAP = "demo_vehicle.map.toml"

_ID_DOMAIN = b"can2care catalogue v1\n"

StrPath: TypeAlias = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """A parsed DBC and its signal map. Two catalogues are equal when their ids are.

    ``mappings`` maps VSS paths to signals in the map file's order; ``vss_by_signal`` is the
    reverse lookup, ``(message, signal) -> VSS path``. ``dbc_source`` and ``map_source`` say
    where the files came from, for messages; they are not part of the identity.
    """

    catalogue_id: str
    database: Database = field(compare=False, repr=False)
    mappings: Mapping[str, SignalMapping] = field(compare=False, repr=False)
    dbc_source: str = field(compare=False)
    map_source: str | None = field(compare=False, default=None)
    vss_by_signal: Mapping[tuple[str, str], str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mappings", MappingProxyType(dict(self.mappings)))
        reverse = {(m.message, m.signal): vss for vss, m in self.mappings.items()}
        object.__setattr__(self, "vss_by_signal", MappingProxyType(reverse))

    def vss_path(self, message: str, signal: str) -> str | None:
        """The VSS path a DBC signal is mapped to, if any."""
        return self.vss_by_signal.get((message, signal))

    def mapping_for(self, message: str, signal: str) -> SignalMapping | None:
        """The mapping of a DBC signal, if it has one."""
        vss = self.vss_by_signal.get((message, signal))
        return None if vss is None else self.mappings[vss]


def load_catalogue(dbc_path: StrPath | None, map_path: StrPath | None = None) -> Catalogue:
    """Load a DBC and, if given, its signal map.

    With ``dbc_path`` None the DBC is the one the map's ``dbc`` key names, relative to the
    map. Raises `DbcError` or `SignalMapError`, naming the file and where possible the line.
    """
    map_text = parsed = None
    if map_path is not None:
        map_text = _read_text(map_path)
        parsed = parse_signal_map(map_text, os.fspath(map_path))
        named = None if parsed.dbc is None else Path(map_path).parent / parsed.dbc
        if dbc_path is None:
            if named is None:
                raise SignalMapError(
                    "missing key (no DBC was given, so the map must name one)",
                    path=os.fspath(map_path),
                    field="dbc",
                )
            dbc_path = named
        elif named is not None and not _same_file(named, Path(dbc_path)):
            log.warning("%s was written for %s; using it with %s", map_path, named, dbc_path)
    if dbc_path is None:
        raise TypeError("load_catalogue() needs a DBC path, a map path, or both")
    try:
        dbc_bytes = Path(dbc_path).read_bytes()
    except OSError as exc:
        raise DbcError(f"cannot read: {exc.strerror or exc}", path=os.fspath(dbc_path)) from exc
    return _build(
        dbc_bytes,
        os.fspath(dbc_path),
        map_text,
        parsed,
        None if map_path is None else os.fspath(map_path),
    )


def demo_catalogue() -> Catalogue:
    """The demo vehicle's DBC and signal map, as shipped in this package."""
    from . import data_file

    dbc_bytes = data_file(DEMO_DBC).read_bytes()
    map_text = data_file(DEMO_MAP).read_text(encoding="utf-8")
    parsed = parse_signal_map(map_text, DEMO_MAP)
    return _build(dbc_bytes, DEMO_DBC, map_text, parsed, DEMO_MAP)


def _build(
    dbc_bytes: bytes,
    dbc_source: str,
    map_text: str | None,
    parsed: ParsedMap | None,
    map_source: str | None,
) -> Catalogue:
    database = parse_dbc(dbc_bytes, dbc_source)
    mappings: tuple[SignalMapping, ...] = ()
    if parsed is not None and map_text is not None and map_source is not None:
        check_against(parsed, database, map_text, map_source)
        mappings = parsed.mappings
    catalogue = Catalogue(
        catalogue_id=_catalogue_id(dbc_bytes, mappings),
        database=database,
        mappings={mapping.vss: mapping for mapping in mappings},
        dbc_source=dbc_source,
        map_source=map_source,
    )
    log.debug(
        "catalogue %s: %s (%d messages), %s (%d VSS paths)",
        catalogue.catalogue_id,
        dbc_source,
        len(database.messages),
        map_source,
        len(mappings),
    )
    return catalogue


def _catalogue_id(dbc_bytes: bytes, mappings: tuple[SignalMapping, ...]) -> str:
    """First 16 hex digits of SHA-256 over the DBC (LF line ends) and the canonical map."""
    canonical = [
        [m.vss, m.message, m.signal, m.unit, m.scale, m.offset]
        for m in sorted(mappings, key=lambda m: m.vss)
    ]
    document = json.dumps(
        {"version": 1, "signals": canonical}, separators=(",", ":"), allow_nan=False
    )
    dbc = dbc_bytes.replace(b"\r\n", b"\n")
    digest = hashlib.sha256(_ID_DOMAIN)
    digest.update(len(dbc).to_bytes(8, "big"))
    digest.update(dbc)
    digest.update(document.encode("ascii"))
    return digest.hexdigest()[:16]


def _read_text(path: StrPath) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SignalMapError(f"cannot read: {exc.strerror or exc}", path=os.fspath(path)) from exc
    except UnicodeDecodeError as exc:
        raise SignalMapError(f"not UTF-8 text: {exc.reason}", path=os.fspath(path)) from exc


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()
