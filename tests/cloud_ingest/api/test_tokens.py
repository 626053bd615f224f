"""API tokens: stored hashed, created by an admin or the CLI, listed, revoked."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from can2care.cli import main
from cloud_ingest.api.tokens import authenticate, parse_token

from ._support import Seeded, auth


def test_only_the_hash_is_stored(api: TestClient, seeded: Seeded, db_url: str) -> None:
    made = api.post("/v1/tokens", headers=auth(seeded.tokens["admin"]),
                    json={"name": "ana", "role": "supervisor"})  # fmt: skip
    assert made.status_code == 201
    token = made.json()["token"]
    parsed = parse_token(token)
    assert parsed is not None and parsed[0] == made.json()["token_id"]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT secret_hash FROM api_token WHERE token_id = %s", (parsed[0],)
        ).fetchone()
    assert row is not None and bytes(row[0]) == hashlib.sha256(parsed[1].encode()).digest()
    listed = api.get("/v1/tokens", headers=auth(seeded.tokens["admin"])).json()
    assert "ana" in {t["name"] for t in listed} and all("token" not in t for t in listed)
    assert api.get("/v1/alerts", headers=auth(token)).status_code == 200


def test_token_refusals(api: TestClient, seeded: Seeded) -> None:
    admin = auth(seeded.tokens["admin"])
    r = api.post("/v1/tokens", headers=admin, json={"name": "x", "role": "boss"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.role"
    assert api.delete("/v1/tokens/0000000000000000", headers=admin).status_code == 404
    assert api.delete("/v1/tokens/nothex", headers=admin).status_code == 422
    r = api.post("/v1/tokens", headers=auth(seeded.tokens["supervisor"]),
                 json={"name": "x", "role": "admin"})  # fmt: skip
    assert r.status_code == 403


def test_cli_creates_lists_and_revokes(
    db_url: str, db_conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["api", "--database", db_url, "token", "create", "--name", "ops",
                 "--role", "admin"]) == 0  # fmt: skip
    token = capsys.readouterr().out.strip()
    principal = authenticate(db_conn, token)
    assert principal is not None and (principal.name, principal.role) == ("ops", "admin")
    assert main(["api", "--database", db_url, "token", "list"]) == 0
    assert principal.token_id in capsys.readouterr().out
    assert main(["api", "--database", db_url, "token", "revoke", principal.token_id]) == 0
    assert authenticate(db_conn, token) is None
    assert main(["api", "--database", db_url, "token", "revoke", "0" * 16]) == 1
