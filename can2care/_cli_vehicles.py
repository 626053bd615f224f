"""``can2care vehicles``: the vehicle registry and the vehicles' broker logins."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "vehicles",
        help="import vehicles into the registry and provision their broker logins",
        description="The vehicle registry (docs/ingest.md) and per-vehicle Mosquitto logins "
        "(docs/mqtt-topics.md).",
    )
    commands = parser.add_subparsers(title="vehicles commands", metavar="COMMAND", required=True)
    imp = commands.add_parser(
        "import",
        help="add or update vehicles from a CSV file, and their broker logins",
        description="Upsert the vehicles of a CSV file (header: vehicle_id,vin,model,"
        "propulsion,delivery_date,owner_ref,region,tags,catalogues) into the registry. With "
        "--broker-dir, rewrite the Mosquitto password file and ACL there for every registered "
        "vehicle: known logins are kept, new vehicles get new passwords, written once to "
        "--credentials-out. Then send the broker SIGHUP.",
    )
    imp.add_argument("file", type=Path, metavar="CSV")
    _database(imp)
    imp.add_argument("--broker-dir", type=Path, metavar="DIR", help="passwords and acl here")
    imp.add_argument(
        "--credentials-out", type=Path, metavar="JSON",
        help="where new vehicles' passwords go (default: DIR/new-credentials.json)",
    )  # fmt: skip
    imp.add_argument("--prefix", default="v1", help="topic prefix of the ACL (default v1)")
    imp.set_defaults(func=_import)
    show = commands.add_parser("list", help="list registered vehicles")
    _database(show)
    show.add_argument("--region", help="only this region")
    show.set_defaults(func=_list)


def _database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", metavar="URL", default=os.environ.get("CAN2CARE_DATABASE_URL"),
        help="database URL (default: $CAN2CARE_DATABASE_URL, see `can2care services env`)",
    )  # fmt: skip


def _error(message: object) -> int:
    print(f"can2care: error: {message}", file=sys.stderr)
    return 1


def _import(args: argparse.Namespace) -> int:
    import psycopg

    from cloud_ingest.provisioning import update_broker_files, write_credentials
    from cloud_ingest.storage import migrate, register_vehicles
    from cloud_ingest.vehicle_file import VehicleFileError, read_vehicle_file

    if not args.database:
        return _error("give --database or set CAN2CARE_DATABASE_URL")
    try:
        vehicles = read_vehicle_file(args.file)
    except VehicleFileError as exc:
        return _error(f"nothing imported:\n{exc}")
    try:
        with psycopg.connect(args.database, autocommit=True) as conn:
            migrate(conn)
            register_vehicles(conn, vehicles)
            ids = [str(r[0]) for r in conn.execute("SELECT vehicle_id FROM vehicle ORDER BY 1")]
    except psycopg.Error as exc:
        return _error(f"database: {str(exc).strip()}")
    print(f"{len(vehicles)} vehicles imported; {len(ids)} registered")
    if args.broker_dir is None:
        return 0
    try:
        fresh, ingest_password = update_broker_files(args.broker_dir, ids, prefix=args.prefix)
    except (OSError, ValueError) as exc:
        return _error(f"broker files: {exc}")
    if fresh:
        out = args.credentials_out or args.broker_dir / "new-credentials.json"
        write_credentials(out, fresh)
        print(f"{len(fresh)} new broker logins; their passwords are in {out} (mode 0600)")
    if ingest_password is not None:
        secret = args.broker_dir / "ingest.password"
        secret.write_text(ingest_password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        print(f"the ingest service's password is in {secret}")
    print(f"wrote {args.broker_dir / 'passwords'} and {args.broker_dir / 'acl'}; "
          "send the broker SIGHUP to apply them")  # fmt: skip
    return 0


def _list(args: argparse.Namespace) -> int:
    import psycopg

    if not args.database:
        return _error("give --database or set CAN2CARE_DATABASE_URL")
    query = (
        "SELECT v.vehicle_id, coalesce(v.vin, ''), coalesce(v.model, ''),"
        " coalesce(v.region, ''), coalesce(s.state, '-')"
        " FROM vehicle v LEFT JOIN vehicle_status s USING (vehicle_id)"
        " WHERE %(region)s::text IS NULL OR v.region = %(region)s ORDER BY 1"
    )
    try:
        with psycopg.connect(args.database) as conn:
            rows = conn.execute(query, {"region": args.region}).fetchall()
    except psycopg.Error as exc:
        return _error(f"database: {str(exc).strip()}")
    print(f"{'vehicle':<24} {'vin':<17} {'model':<20} {'region':<12} status")
    for vehicle_id, vin, model, region, state in rows:
        print(f"{vehicle_id:<24} {vin:<17} {model:<20} {region:<12} {state}")
    print(f"{len(rows)} vehicles")
    return 0
