"""The vehicle registry as a CSV file, for importing a fleet (``can2care vehicles import``).

One header line, then one vehicle per line::

    vehicle_id,vin,model,propulsion,delivery_date,owner_ref,region,tags,catalogues
    veh-0001,WVWZZZ1JZXW000001,Aurora EV,BEV,2026-03-01,owner-17,north,fleet;lease,5b549d043b34ed61

Only ``vehicle_id`` is required; empty cells are NULL. ``tags`` and ``catalogues`` hold
several values separated by ``;``. Every problem is reported at once as
``path:line: column: reason`` (`VehicleFileError`), and nothing is imported from a file with
a problem.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from .provisioning import validate_vehicle_id
from .storage import Vehicle

__all__ = ["COLUMNS", "VehicleFileError", "read_vehicle_file", "write_vehicle_file"]

COLUMNS = (
    "vehicle_id", "vin", "model", "propulsion", "delivery_date", "owner_ref", "region", "tags",
    "catalogues",
)  # fmt: skip
_CATALOGUE = re.compile(r"[0-9a-f]{16}")
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")  # ISO 3779: no I, O or Q


class VehicleFileError(ValueError):
    """A vehicle file that cannot be imported; ``problems`` lists each ``path:line: ...``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        super().__init__("\n".join(shown))


def read_vehicle_file(path: Path) -> list[Vehicle]:
    """The vehicles of a CSV file; `VehicleFileError` naming every problem and where."""
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise VehicleFileError([f"{path}: cannot read the file: {exc}"]) from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise VehicleFileError([f"{path}:1: the file is empty; the header line is missing"])
    header = [cell.strip() for cell in rows[0]]
    problems = _check_header(path, header)
    if problems:
        raise VehicleFileError(problems)
    vehicles: list[Vehicle] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) != len(header):
            problems.append(f"{where}: {len(row)} cells, the header has {len(header)}")
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        vehicle = _vehicle(cells, where, problems)
        if vehicle is None:
            continue
        if vehicle.vehicle_id in seen:
            problems.append(
                f"{where}: vehicle_id: {vehicle.vehicle_id!r} is already on line "
                f"{seen[vehicle.vehicle_id]}"
            )
            continue
        seen[vehicle.vehicle_id] = number
        vehicles.append(vehicle)
    if problems:
        raise VehicleFileError(problems)
    return vehicles


def _check_header(path: Path, header: list[str]) -> list[str]:
    problems = []
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        problems.append(
            f"{path}:1: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(COLUMNS)}"
        )
    if "vehicle_id" not in header:
        problems.append(f"{path}:1: the header has no vehicle_id column")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(f"{path}:1: column(s) {', '.join(map(repr, repeated))} repeated")
    return problems


def _vehicle(cells: dict[str, str], where: str, problems: list[str]) -> Vehicle | None:
    before = len(problems)
    vehicle_id = cells.get("vehicle_id", "")
    try:
        validate_vehicle_id(vehicle_id)
    except ValueError as exc:
        problems.append(f"{where}: vehicle_id: {exc}")
    vin = cells.get("vin") or None
    if vin is not None and not _VIN.fullmatch(vin):
        problems.append(f"{where}: vin: {vin!r} is not 17 characters of A-Z (no I, O, Q) and 0-9")
    delivery = None
    if cells.get("delivery_date"):
        try:
            delivery = date.fromisoformat(cells["delivery_date"])
        except ValueError:
            problems.append(
                f"{where}: delivery_date: {cells['delivery_date']!r} is not a date (YYYY-MM-DD)"
            )
    catalogues = _split(cells.get("catalogues", ""))
    for catalogue in catalogues:
        if not _CATALOGUE.fullmatch(catalogue):
            problems.append(
                f"{where}: catalogues: {catalogue!r} is not a catalogue id (16 hex digits, as "
                "`can2care dbc show` prints it)"
            )
    if len(problems) > before:
        return None
    return Vehicle(
        vehicle_id=vehicle_id,
        vin=vin,
        model=cells.get("model") or None,
        propulsion=cells.get("propulsion") or None,
        delivery_date=delivery,
        owner_ref=cells.get("owner_ref") or None,
        region=cells.get("region") or None,
        tags=tuple(_split(cells.get("tags", ""))),
        catalogues=tuple(catalogues),
    )


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def write_vehicle_file(path: Path, vehicles: Iterable[Vehicle]) -> None:
    """Write ``vehicles`` in the file format (for exports and examples)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for v in vehicles:
            writer.writerow(
                [v.vehicle_id, v.vin or "", v.model or "", v.propulsion or "",
                 v.delivery_date.isoformat() if v.delivery_date else "", v.owner_ref or "",
                 v.region or "", ";".join(v.tags), ";".join(v.catalogues)]
            )  # fmt: skip
