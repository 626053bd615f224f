"""Broker logins for a fleet: make them, keep them in a JSON file, and provision a broker.

A fleet's credentials file is JSON::

    {"version": 1, "vehicles": [{"vehicle_id": "fleet-00001", "password": "..."}, ...]}

written with mode 0600. `provision` writes it together with the Mosquitto password file and
ACL (`cloud_ingest.provisioning.write_broker_files`) and the ingest user's password, so that a
private broker started on that directory accepts exactly this fleet and the ingest service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest import provisioning
from cloud_ingest.provisioning import (
    DEFAULT_INGEST_USER,
    VehicleCredential,
    new_password,
    write_broker_files,
)

from ..errors import FleetError
from ._config import vehicle_ids

__all__ = [
    "Provisioned",
    "fleet_credentials",
    "provision",
    "read_credentials",
    "write_credentials",
]

log = logging.getLogger(__name__)

_VERSION = 1


def fleet_credentials(
    prefix: str, count: int, *, seed: str | None = None
) -> list[VehicleCredential]:
    """Logins for ``count`` vehicles named ``prefix`` and a number.

    With ``seed`` the passwords derive from it (HMAC-SHA256 of the vehicle id), so a load test
    can make the same fleet again without a file; without, they are random (`new_password`).
    """
    ids = vehicle_ids(prefix, count)
    if seed is None:
        return [VehicleCredential(v, new_password()) for v in ids]
    key = seed.encode("utf-8")
    return [
        VehicleCredential(v, hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest())
        for v in ids
    ]


def write_credentials(path: Path, credentials: Sequence[VehicleCredential]) -> None:
    """Write the credentials file (mode 0600, replaced atomically)."""
    provisioning.write_credentials(path, credentials)


def read_credentials(path: Path) -> list[VehicleCredential]:
    """The credentials in a file `write_credentials` wrote; `FleetError` naming the problem."""
    try:
        return provisioning.read_credentials(path)
    except ValueError as exc:
        raise FleetError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What `provision` wrote."""

    password_file: Path
    acl_file: Path
    credentials_file: Path
    ingest_password_file: Path
    ingest_user: str


def provision(
    directory: Path,
    credentials: Sequence[VehicleCredential],
    *,
    ingest_user: str = DEFAULT_INGEST_USER,
    prefix: str = "v1",
) -> Provisioned:
    """Write a broker's password file and ACL for the fleet and a fresh ingest password, the
    ingest password (``ingest.password``, mode 0600) and the credentials (``fleet.json``)."""
    directory.mkdir(parents=True, exist_ok=True)
    ingest_password = new_password()
    try:
        password_file, acl_file = write_broker_files(
            directory,
            credentials,
            ingest_password=ingest_password,
            ingest_user=ingest_user,
            prefix=prefix,
        )
    except ValueError as exc:
        raise FleetError(f"cannot provision the fleet: {exc}") from exc
    ingest_file = directory / "ingest.password"
    ingest_file.unlink(missing_ok=True)
    fd = os.open(ingest_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(ingest_password + "\n")
    credentials_file = directory / "fleet.json"
    write_credentials(credentials_file, credentials)
    log.info("provisioned %d vehicles in %s", len(credentials), directory)
    return Provisioned(password_file, acl_file, credentials_file, ingest_file, ingest_user)
