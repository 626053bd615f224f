"""The vehicle registry: vehicles and the signal catalogues each may send.

::

    register_vehicles(conn, [Vehicle("veh-1", vin="...", catalogues=(catalogue_id,))])
    vehicle_catalogues(conn)   # {"veh-1": frozenset({catalogue_id}), ...}

Registering is an upsert: a vehicle registered again gets the new fields and exactly the new
catalogue list. Broker credentials are not stored here (`cloud_ingest.provisioning`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeAlias

import psycopg

__all__ = ["Vehicle", "register_vehicles", "vehicle_catalogues"]

Connection: TypeAlias = "psycopg.Connection[Any]"


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registry entry; ``catalogues`` are the catalogue ids it may send (empty: any)."""

    vehicle_id: str
    vin: str | None = None
    model: str | None = None
    propulsion: str | None = None
    delivery_date: date | None = None
    owner_ref: str | None = None
    region: str | None = None
    tags: tuple[str, ...] = ()
    catalogues: tuple[str, ...] = ()


def register_vehicles(conn: Connection, vehicles: Iterable[Vehicle]) -> int:
    """Insert or update ``vehicles`` and their catalogue lists in one transaction."""
    items = list(vehicles)
    if not items:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO vehicle (vehicle_id, vin, model, propulsion, delivery_date, owner_ref,"
            " region, tags) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (vehicle_id) DO UPDATE SET vin = excluded.vin,"
            " model = excluded.model, propulsion = excluded.propulsion,"
            " delivery_date = excluded.delivery_date, owner_ref = excluded.owner_ref,"
            " region = excluded.region, tags = excluded.tags",
            [
                (
                    v.vehicle_id,
                    v.vin,
                    v.model,
                    v.propulsion,
                    v.delivery_date,
                    v.owner_ref,
                    v.region,
                    list(v.tags),
                )
                for v in items
            ],
        )
        ids = [v.vehicle_id for v in items]
        cur.execute("DELETE FROM vehicle_catalogue WHERE vehicle_id = ANY(%s)", [ids])
        pairs = [(v.vehicle_id, c) for v in items for c in dict.fromkeys(v.catalogues)]
        if pairs:
            cur.execute(
                "INSERT INTO vehicle_catalogue (vehicle_id, catalogue_id)"
                " SELECT * FROM unnest(%s::text[], %s::text[])",
                [[p[0] for p in pairs], [p[1] for p in pairs]],
            )
    return len(items)


def vehicle_catalogues(conn: Connection) -> dict[str, frozenset[str]]:
    """Every registered vehicle and the catalogue ids it may send (empty: any)."""
    rows = conn.execute(
        "SELECT v.vehicle_id, coalesce(array_agg(c.catalogue_id)"
        " FILTER (WHERE c.catalogue_id IS NOT NULL), '{}')"
        " FROM vehicle v LEFT JOIN vehicle_catalogue c USING (vehicle_id)"
        " GROUP BY v.vehicle_id"
    ).fetchall()
    if not conn.autocommit:
        conn.rollback()  # end the read-only transaction the query opened
    return {str(vid): frozenset(cats) for vid, cats in rows}
