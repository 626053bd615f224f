"""Vehicles' broker logins through the API: admin only, the password shown once, the files
rewritten, the broker told to reload, and a real Mosquitto taking the new password."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from can2care.devservices import _proc
from can2care.devservices._proc import free_port
from cloud_ingest.api import Settings, SettingsError
from cloud_ingest.provisioning import (
    acl_text,
    read_password_file,
    update_broker_files,
    verify_password_line,
)
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import configured_broker

from ._support import Seeded, auth, client

PATH = "/v1/vehicles/{}/broker-login"
NOT_AUTHORIZED = 135


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    """A broker directory where veh-2 and veh-9 (not registered) already have logins."""
    directory = tmp_path / "broker"
    update_broker_files(directory, ["veh-2", "veh-9"])
    return directory


@pytest.fixture
def managed(db_url: str, seeded: Seeded, broker_dir: Path) -> Iterator[TestClient]:
    """The application managing the logins in ``broker_dir`` (no pid file)."""
    with client(db_url, broker_dir=broker_dir) as c:
        yield c


def test_the_broker_settings_come_from_the_environment() -> None:
    env = {
        "CAN2CARE_DATABASE_URL": "postgresql://env",
        "CAN2CARE_BROKER_DIR": "/etc/mosquitto/can2care",
        "CAN2CARE_BROKER_PID_FILE": "/run/mosquitto/mosquitto.pid",
        "CAN2CARE_BROKER_TOPIC_PREFIX": "fleet/v2",
    }
    s = Settings.from_env(env)
    assert s.broker_dir == Path("/etc/mosquitto/can2care")
    assert s.broker_pid_file == Path("/run/mosquitto/mosquitto.pid")
    assert s.broker_topic_prefix == "fleet/v2"
    plain = Settings.from_env({"CAN2CARE_DATABASE_URL": "x"})
    assert (plain.broker_dir, plain.broker_pid_file, plain.broker_topic_prefix) == (
        None,
        None,
        "v1",
    )
    with pytest.raises(SettingsError, match="broker_topic_prefix"):
        Settings.from_env({**env, "CAN2CARE_BROKER_TOPIC_PREFIX": "v1/#"})


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_only_an_admin_may(method: str, managed: TestClient, seeded: Seeded) -> None:
    r = managed.request(method, PATH.format("veh-2"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    for role in ("agent", "supervisor"):
        r = managed.request(method, PATH.format("veh-2"), headers=auth(seeded.tokens[role]))
        assert r.status_code == 403, role
        assert r.json()["type"] == "urn:can2care:problem:forbidden"


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_without_a_broker_directory_it_is_a_409_naming_the_setting(
    method: str, api: TestClient, seeded: Seeded
) -> None:
    r = api.request(method, PATH.format("veh-1"), headers=auth(seeded.tokens["admin"]))
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert "CAN2CARE_BROKER_DIR" in r.json()["detail"]


def test_rotation_shows_the_password_once_and_keeps_every_other_login(
    managed: TestClient, seeded: Seeded, broker_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    admin = auth(seeded.tokens["admin"])
    before = read_password_file(broker_dir / "passwords")
    with caplog.at_level(logging.INFO, logger="cloud_ingest"):
        r = managed.post(PATH.format("veh-2"), headers=admin)
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body.keys() == {"vehicle_id", "username", "password", "broker_reloaded"}
    assert body["vehicle_id"] == body["username"] == "veh-2"
    assert body["broker_reloaded"] is False  # no pid file
    after = read_password_file(broker_dir / "passwords")
    assert list(after) == list(before)  # the same users in the same order
    assert verify_password_line(after["veh-2"], body["password"])
    assert after["veh-2"] != before["veh-2"]
    assert {u: after[u] for u in after if u != "veh-2"} == {
        u: before[u] for u in before if u != "veh-2"
    }
    assert "veh-2" in caplog.text and "'admin-1'" in caplog.text
    assert body["password"] not in caplog.text
    # The password is not an API credential.
    assert managed.get("/v1/vehicles", headers=auth(body["password"])).status_code == 401
    r = managed.get(PATH.format("veh-2"), headers=admin)
    assert r.status_code == 200 and r.json() == {"vehicle_id": "veh-2", "has_login": True}
    assert body["password"] not in r.text


def test_a_registered_vehicle_without_a_login_gets_one(
    managed: TestClient, seeded: Seeded, broker_dir: Path
) -> None:
    admin = auth(seeded.tokens["admin"])
    assert managed.get(PATH.format("veh-1"), headers=admin).json()["has_login"] is False
    r = managed.post(PATH.format("veh-1"), headers=admin)
    assert r.status_code == 201
    assert managed.get(PATH.format("veh-1"), headers=admin).json()["has_login"] is True
    logins = read_password_file(broker_dir / "passwords")
    assert verify_password_line(logins["veh-1"], r.json()["password"])
    assert (broker_dir / "acl").read_text() == acl_text(["veh-2", "veh-9", "veh-1"])


def test_removal_then_a_404_for_a_login_that_is_gone(
    managed: TestClient, seeded: Seeded, broker_dir: Path
) -> None:
    admin = auth(seeded.tokens["admin"])
    r = managed.delete(PATH.format("veh-2"), headers=admin)
    assert r.status_code == 204 and r.content == b""
    assert "veh-2" not in read_password_file(broker_dir / "passwords")
    assert "user veh-2" not in (broker_dir / "acl").read_text()
    assert managed.get(PATH.format("veh-2"), headers=admin).json()["has_login"] is False
    r = managed.delete(PATH.format("veh-2"), headers=admin)
    assert r.status_code == 404 and "no broker login" in r.json()["detail"]
    # A login left behind by a vehicle that is not registered can be removed too.
    assert managed.delete(PATH.format("veh-9"), headers=admin).status_code == 204


def test_unknown_vehicles_bad_ids_and_the_ingest_user_are_refused(
    managed: TestClient, seeded: Seeded, broker_dir: Path
) -> None:
    admin = auth(seeded.tokens["admin"])
    before = (broker_dir / "passwords").read_text()
    for method in ("POST", "GET"):
        r = managed.request(method, PATH.format("veh-404"), headers=admin)
        assert r.status_code == 404 and r.json()["detail"] == "no vehicle 'veh-404'"
    assert managed.delete(PATH.format("veh-404"), headers=admin).status_code == 404
    for method in ("POST", "GET", "DELETE"):
        r = managed.request(method, PATH.format("a b"), headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path.vehicle_id"
        r = managed.request(method, PATH.format("can2care-ingest"), headers=admin)
        assert r.status_code == 409 and "ingest service" in r.json()["detail"]
    assert (broker_dir / "passwords").read_text() == before


def test_a_pid_file_that_names_no_process_is_reported_not_a_500(
    db_url: str,
    seeded: Seeded,
    broker_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = auth(seeded.tokens["admin"])
    for text in (None, "not a pid\n"):
        pid_file = tmp_path / "mosquitto.pid"
        if text is not None:
            pid_file.write_text(text)
        with client(db_url, broker_dir=broker_dir, broker_pid_file=pid_file) as c:
            with caplog.at_level(logging.WARNING, logger="cloud_ingest.provisioning"):
                r = c.post(PATH.format("veh-1"), headers=admin)
            assert r.status_code == 201 and r.json()["broker_reloaded"] is False
            assert "cannot tell the broker to reload" in caplog.text
            assert c.delete(PATH.format("veh-1"), headers=admin).status_code == 204
        caplog.clear()


# -- against a real broker ---------------------------------------------------------------------


def _connect_code(port: int, user: str, password: str) -> int:
    """The CONNACK reason code the broker answers ``user``'s login with."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=mqtt.MQTTv5)
    paho.username_pw_set(user, password)
    codes: list[int] = []
    answered = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        codes.append(getattr(rc, "value", -1))
        answered.set()
        c.disconnect()

    paho.on_connect = on_connect
    paho.connect_async("127.0.0.1", port)
    paho.loop_start()
    try:
        assert answered.wait(10)
    finally:
        paho.disconnect()
        paho.loop_stop()
        paho.on_connect = None
    return codes[0]


def test_after_a_rotation_the_broker_takes_the_new_password_only(
    db_url: str, seeded: Seeded
) -> None:
    root = make_service_dir("can2care-api-broker-")
    try:
        fresh, _ingest = update_broker_files(root, ["veh-1", "veh-2"])
        old = {c.vehicle_id: c.password for c in fresh}
        port = free_port()
        settings = [
            "allow_anonymous false",
            f"password_file {root / 'passwords'}",
            f"acl_file {root / 'acl'}",
        ]
        with configured_broker(root, port, settings) as broker:
            pid_file = root / "mosquitto.pid"
            pid_file.write_text(f"{broker.pid}\n")
            assert _connect_code(port, "veh-1", old["veh-1"]) == 0
            with client(db_url, broker_dir=root, broker_pid_file=pid_file) as c:
                r = c.post(PATH.format("veh-1"), headers=auth(seeded.tokens["admin"]))
            assert r.status_code == 201 and r.json()["broker_reloaded"] is True
            new = r.json()["password"]
            # SIGHUP makes the broker read its files again, a moment later.
            assert _proc.wait_until(lambda: _connect_code(port, "veh-1", new) == 0, 10)
            assert _connect_code(port, "veh-1", old["veh-1"]) == NOT_AUTHORIZED
            assert _connect_code(port, "veh-2", old["veh-2"]) == 0  # the others keep theirs
    finally:
        shutil.rmtree(root, ignore_errors=True)
