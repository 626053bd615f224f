"""The vehicle registry as the ingest service sees it: a cache read from the database.

The cache is read at start, again every ``refresh_s``, and early (at most every
``miss_refresh_s``) when a message comes from a vehicle it does not know, so a vehicle
registered while the service runs is accepted within seconds. When a needed read fails (the
database is down), `RegistryUnavailable` is raised: the message is classified later, never
dead-lettered as unknown because of an outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ..storage import vehicle_catalogues

__all__ = ["RegistryCache", "RegistryUnavailable"]

log = logging.getLogger(__name__)


class RegistryUnavailable(Exception):
    """The registry could not be read (a transient database error is the cause)."""


class RegistryCache:
    """Which vehicles exist and which catalogues each may send (`RegistryView`)."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        *,
        refresh_s: float,
        miss_refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self.refresh_s = refresh_s
        self.miss_refresh_s = miss_refresh_s
        self._clock = clock
        self._vehicles: dict[str, frozenset[str]] = {}
        self._read_at: float | None = None

    def catalogues(self, vehicle_id: str) -> frozenset[str] | None:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self.refresh_s:
            self.refresh()
        found = self._vehicles.get(vehicle_id)
        if (
            found is None
            and self._read_at is not None
            and now - self._read_at >= self.miss_refresh_s
        ):
            self.refresh()
            found = self._vehicles.get(vehicle_id)
        return found

    def refresh(self) -> None:
        """Read the registry now; `RegistryUnavailable` if the database cannot answer."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            vehicles = vehicle_catalogues(self._conn)
        except psycopg.Error as exc:
            self.close()
            raise RegistryUnavailable(f"cannot read the vehicle registry: {exc}") from exc
        if len(vehicles) != len(self._vehicles):
            log.info("vehicle registry: %d vehicles", len(vehicles))
        self._vehicles = vehicles
        self._read_at = self._clock()

    def __len__(self) -> int:
        return len(self._vehicles)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
