"""``can2care api``: serve the care team's HTTP API; create, list and revoke its tokens."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "api",
        help="serve the care team's HTTP API; manage its tokens",
        description="Serve the care team's HTTP API (docs/api.md) with uvicorn, or manage "
        "its bearer tokens. The database is migrated first.",
    )
    parser.add_argument(
        "--database", metavar="URL", default=os.environ.get("CAN2CARE_DATABASE_URL"),
        help="database URL (default: $CAN2CARE_DATABASE_URL)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (one per core; default 1)"
    )
    parser.set_defaults(func=_serve)
    commands = parser.add_subparsers(title="api commands", metavar="COMMAND")
    token = commands.add_parser("token", help="API tokens: create, list, revoke")
    tokens = token.add_subparsers(title="token commands", metavar="COMMAND", required=True)
    create = tokens.add_parser(
        "create", help="create a token (printed once; only its hash is stored)"
    )
    create.add_argument("--name", required=True, help="who uses it (the actor of changes)")
    create.add_argument("--role", required=True, choices=("agent", "supervisor", "admin"))
    create.set_defaults(func=_create)
    show = tokens.add_parser("list", help="list the tokens (never their secrets)")
    show.add_argument("--revoked", action="store_true", help="with the revoked ones")
    show.set_defaults(func=_list)
    revoke = tokens.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the 16 hex digits after c2c_")
    revoke.set_defaults(func=_revoke)


def _connect(args: argparse.Namespace) -> Any:
    import psycopg

    from cloud_ingest.storage import migrate

    if not args.database:
        raise SystemExit("can2care: error: give --database or set CAN2CARE_DATABASE_URL")
    conn = psycopg.connect(args.database, autocommit=True)
    try:
        migrate(conn)
    except BaseException:
        conn.close()  # the error (a StorageError: no timescaledb, say) is main's to report
        raise
    return conn


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cloud_ingest.api import Settings, SettingsError, create_app

    try:
        settings = Settings.from_env(database_url=args.database)
    except SettingsError as exc:
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    with _connect(args):
        pass
    print(f"can2care api: http://{args.host}:{args.port}/docs; Ctrl-C stops", file=sys.stderr)
    if args.workers > 1:  # each worker process builds the application from the environment
        os.environ["CAN2CARE_DATABASE_URL"] = settings.database_url
        uvicorn.run(
            "cloud_ingest.api.app:app_from_env", factory=True, workers=args.workers,
            host=args.host, port=args.port, log_config=None, proxy_headers=True,
        )  # fmt: skip
    else:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None,
                    proxy_headers=True)  # fmt: skip
    return 0


def _create(args: argparse.Namespace) -> int:
    from cloud_ingest.api import create_token

    with _connect(args) as conn:
        token, info = create_token(conn, args.name, args.role, created_by="cli")
    print(f"token {info.token_id} for {info.name} ({info.role}); it is shown only now:",
          file=sys.stderr)  # fmt: skip
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    from cloud_ingest.api import list_tokens

    with _connect(args) as conn:
        for t in list_tokens(conn, include_revoked=args.revoked):
            revoked = f"  revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else ""
            print(f"{t.token_id}  {t.role:<10} {t.name:<24} {t.created_at:%Y-%m-%d}{revoked}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from cloud_ingest.api import NotFound, revoke_token

    with _connect(args) as conn:
        try:
            info = revoke_token(conn, args.token_id)
        except NotFound as exc:
            print(f"can2care: error: {exc}", file=sys.stderr)
            return 1
    print(f"revoked {info.token_id} ({info.name})")
    return 0
