"""Schemathesis over the application's OpenAPI document, against the real database.

Every operation gets the document's examples, the coverage phase's boundary and invalid values
and 15 generated requests (derandomized: the same cases every run), with an admin token that
Schemathesis knows as the document's bearer credentials. Each answer must be no server error,
have a documented status code, content type and headers and match its schema (the stream's
events too), and a request that breaks the schema must be refused. Query parameters the
document does not declare are ignored by design (docs/api.md), so none are sent. One database
for the module holds `seed`'s vehicles, alerts and tokens plus a campaign, a rule file and a
webhook, so that the document's example ids (and the coverage phase's smallest id, 1) find
real rows. The broker-login operations rewrite a temporary password file and ACL, so they are
exercised beyond the 409 of an API without a broker directory.

Webhooks only ever point to a receiver on a loopback port: a generated URL that the API would
store is replaced by the receiver's before the request is sent, so the test deliveries of
``POST /v1/webhooks/{webhook_id}/test`` never leave this machine.

The schema is loaded when the module is (``schema.parametrize``, one test per operation);
Schemathesis's fixture-based loading (``from_fixture``) does not run on pytest 9.2, whose
nodes no longer have the ``_nodeid`` attribute it rewrites.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from can2care.devservices import PgEndpoint
from cloud_ingest.api import Settings, create_app
from tests.fixtures.fix_db import TEMPLATE
from tests.rules._support import Receiver, serve

from ._support import auth, client, seed, settings
from .test_rules import GOOD

_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# The stream never ends by itself: read what it sends in this long, then hang up.
_STREAM_READ_S = 0.3
_REQUEST_S = 10.0


@dataclass(frozen=True)
class Fuzzed:
    """The application on the module's database, and the webhook receiver."""

    app: FastAPI
    receiver: Receiver


# The admin token the requests carry: a fixed one, stored by the database fixture, so that
# Schemathesis knows it as the document's bearer credentials (and tests leaving it out).
_TOKEN_ID, _SECRET = "5c4e3a7d9b1f2e40", "schemathesis-admin-token-secret-0123456789a"
TOKEN = f"c2c_{_TOKEN_ID}_{_SECRET}"

# The document comes from the application itself (test_app checks that docs/api.openapi.json
# is the same); the application a test calls is the one on the module's database.
# Unknown query parameters are ignored by design (docs/api.md), so none are generated.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="postgresql:///unused")).openapi(),
    config=SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},
            "generation": {"allow-extra-parameters": False},
        }
    ),
)
schema.app = create_app(Settings(database_url="postgresql:///unused"))


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with serve(Receiver("a-long-enough-signing-secret")) as rx:
        yield rx


@pytest.fixture(scope="module")
def fuzzed(
    pg_cluster: PgEndpoint, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    """One database for the module: `seed`, plus the rows the document's example ids name;
    vehicles' broker logins in a temporary directory (no broker to signal)."""
    name = "test_schemathesis"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    url = pg_cluster.dsn(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            seeded = seed(conn)
            conn.execute(
                "INSERT INTO api_token (token_id, name, role, secret_hash, created_by)"
                " VALUES (%s, 'schemathesis', 'admin', %s, 'test')",
                (_TOKEN_ID, hashlib.sha256(_SECRET.encode()).digest()),
            )
        with client(url) as c:
            sup, admin = auth(seeded.tokens["supervisor"]), auth(seeded.tokens["admin"])
            for method, path, body in (
                ("POST", "/v1/campaigns", {"name": "winter-tyres", "title": "Winter tyre check",
                                           "segment": {"regions": ["north"]}}),
                ("PUT", "/v1/rules/files/fleet-care", {"text": GOOD}),
                ("POST", "/v1/webhooks", {"name": "care-desk", "url": receiver.url,
                                          "secret": receiver.secret}),
            ):  # fmt: skip
                r = c.request(method, path, headers=admin if "webhooks" in path else sup, json=body)
                assert r.status_code in (200, 201), r.text
        broker_dir = tmp_path_factory.mktemp("broker")
        yield Fuzzed(create_app(settings(url, broker_dir=broker_dir)), receiver)
        with psycopg.connect(url, autocommit=True) as conn:
            urls = {row[0] for row in conn.execute("SELECT url FROM webhook")}
        assert urls <= {receiver.url}, urls
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _keep_webhooks_local(case: Case[Any], receiver: Receiver) -> None:
    """A webhook URL that the API would store becomes the loopback receiver's."""
    if case.operation.label != "POST /v1/webhooks" or not isinstance(case.body, dict):
        return
    url = case.body.get("url")
    if not isinstance(url, str) or len(url) > 2000:  # refused by the schema: nothing stored
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.scheme in ("http", "https") or parts.netloc:
        case.body["url"] = receiver.url


@schema.parametrize()
@hypothesis_settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: Case[Any], fuzzed: Fuzzed) -> None:
    _keep_webhooks_local(case, fuzzed.receiver)
    streaming = case.operation.label == "GET /v1/alerts/stream"
    case.call_and_validate(
        app=fuzzed.app,
        checks=_CHECKS,
        timeout=_STREAM_READ_S if streaming else _REQUEST_S,
    )
