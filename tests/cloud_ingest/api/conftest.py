"""Fixtures of the API tests: a seeded database per test and a client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ._support import Conn, Seeded, client, seed


@pytest.fixture
def seeded(db_conn: Conn) -> Seeded:
    return seed(db_conn)


@pytest.fixture
def api(db_url: str, seeded: Seeded) -> Iterator[TestClient]:
    with client(db_url) as c:
        yield c
