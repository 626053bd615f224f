"""Broker credentials and ACL against mosquitto_passwd and a real Mosquitto: a vehicle publishes
under its own topics only, the ingest user reads them (also through a shared subscription),
and a wrong password is refused at CONNECT. One vehicle's login is rotated or removed keeping
every other line, also by two processes at once, and the broker is signalled to reload."""

from __future__ import annotations

import base64
import logging
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from can2care.devservices import _proc
from can2care.devservices._proc import free_port
from cloud_ingest.provisioning import (
    VehicleCredential,
    acl_text,
    mosquitto_password_line,
    new_password,
    read_password_file,
    reload_broker,
    remove_vehicle_login,
    rotate_vehicle_login,
    update_broker_files,
    verify_password_line,
    write_broker_files,
)
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import configured_broker

INGEST = "can2care-ingest"
NOT_AUTHORIZED = 135


def test_a_line_from_mosquitto_passwd_verifies_and_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(path), "car-a", "s3cret"],
        check=True,
        capture_output=True,
    )
    line = path.read_text().strip()
    assert verify_password_line(line, "s3cret")
    assert not verify_password_line(line, "s3cret ")
    _user, _empty, _kind, iterations, salt, _hash = line.replace(":", "$", 1).split("$")
    ours = mosquitto_password_line(
        "car-a", "s3cret", salt=base64.b64decode(salt), iterations=int(iterations)
    )
    assert ours == line


def test_our_lines_use_a_fresh_salt_and_verify() -> None:
    first = mosquitto_password_line("car-a", "pw")
    second = mosquitto_password_line("car-a", "pw")
    assert first != second
    assert first.startswith("car-a:$7$101$")
    assert verify_password_line(first, "pw")
    assert not verify_password_line(first, "PW")


@pytest.mark.parametrize("line", ["car", "car:$6$abc$def", "car:$7$x$AAAA$AAAA", "car:$7$1$@@$AA"])
def test_a_malformed_password_line_is_a_value_error(line: str) -> None:
    with pytest.raises(ValueError, match="password line"):
        verify_password_line(line, "pw")


def test_the_acl_grants_each_vehicle_its_own_topics_only() -> None:
    assert acl_text(["car-a"]) == (
        "# Written by can2care provisioning; rewritten whenever the fleet changes.\n"
        "# Vehicles may publish only under their own v1/<vehicle_id>/.\n"
        "\n"
        "user can2care-ingest\n"
        "topic read v1/+/telemetry\n"
        "topic read v1/+/events\n"
        "topic read v1/+/status\n"
        "\n"
        "user car-a\n"
        "topic write v1/car-a/telemetry\n"
        "topic write v1/car-a/events\n"
        "topic write v1/car-a/status\n"
    )
    assert "topic write fleet/v2/car-a/events" in acl_text(["car-a"], prefix="fleet/v2")


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "x" * 65, "caf\u00e9", "a\nuser b"])
def test_a_bad_vehicle_id_raises_naming_it(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vehicle id") as info:
        acl_text(["ok", bad])
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError, match="vehicle id"):
        write_broker_files(tmp_path, [VehicleCredential(bad, "pw")], ingest_password="pw")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ids", [["car-a", "car-a"], ["car-a", INGEST]])
def test_duplicates_and_the_ingest_user_are_refused(ids: list[str]) -> None:
    with pytest.raises(ValueError, match=r"'car-a'|'can2care-ingest'"):
        acl_text(ids)


def test_a_bad_prefix_or_user_name_raises() -> None:
    with pytest.raises(ValueError, match="prefix"):
        acl_text(["car-a"], prefix="v1/+")
    with pytest.raises(ValueError, match="user name"):
        mosquitto_password_line("car:a", "pw")


def test_the_files_are_written_atomically_with_mode_0640(tmp_path: Path) -> None:
    creds = [VehicleCredential("car-a", new_password())]
    passwords, acl = write_broker_files(tmp_path, creds, ingest_password="in")
    assert (passwords, acl) == (tmp_path / "passwords", tmp_path / "acl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acl", "passwords"]
    for path in (passwords, acl):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    users = [line.split(":")[0] for line in passwords.read_text().splitlines()]
    assert users == [INGEST, "car-a"]
    assert verify_password_line(passwords.read_text().splitlines()[1], creds[0].password)
    write_broker_files(tmp_path, [], ingest_password="in")
    assert "car-a" not in passwords.read_text() + acl.read_text()
    assert "***" in repr(creds[0])
    assert creds[0].password not in repr(creds[0])


# -- one vehicle's login: rotate, remove, under a lock -------------------------------------------


def test_rotation_replaces_one_password_and_keeps_every_other_line(tmp_path: Path) -> None:
    first, _ingest = update_broker_files(tmp_path, ["car-a", "car-b", "car-c"])
    old = {c.vehicle_id: c.password for c in first}
    before = (tmp_path / "passwords").read_text().splitlines()
    credential = rotate_vehicle_login(tmp_path, "car-b")
    after = (tmp_path / "passwords").read_text().splitlines()
    assert credential.vehicle_id == "car-b" and credential.password != old["car-b"]
    assert [after[i] for i in (0, 1, 3)] == [before[i] for i in (0, 1, 3)]  # ingest, a, c
    assert after[2].startswith("car-b:") and after[2] != before[2]
    assert verify_password_line(after[2], credential.password)
    assert not verify_password_line(after[2], old["car-b"])
    assert acl_text(["car-a", "car-b", "car-c"]) == (tmp_path / "acl").read_text()
    for path in (tmp_path / "passwords", tmp_path / "acl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_rotation_adds_a_login_a_vehicle_does_not_have(tmp_path: Path) -> None:
    update_broker_files(tmp_path, ["car-a"])
    credential = rotate_vehicle_login(tmp_path, "car-new", prefix="fleet/v2")
    logins = read_password_file(tmp_path / "passwords")
    assert list(logins) == [INGEST, "car-a", "car-new"]
    assert verify_password_line(logins["car-new"], credential.password)
    acl = (tmp_path / "acl").read_text()
    assert "user car-new\ntopic write fleet/v2/car-new/telemetry" in acl
    assert "user car-a\n" in acl
    # In an empty directory the login is the only line (no ingest user is invented).
    empty = tmp_path / "new"
    rotate_vehicle_login(empty, "car-a")
    assert list(read_password_file(empty / "passwords")) == ["car-a"]


def test_removal_drops_one_login_and_reports_one_it_did_not_find(tmp_path: Path) -> None:
    update_broker_files(tmp_path, ["car-a", "car-b"])
    before = read_password_file(tmp_path / "passwords")
    assert remove_vehicle_login(tmp_path, "car-a")
    after = read_password_file(tmp_path / "passwords")
    assert after == {INGEST: before[INGEST], "car-b": before["car-b"]}
    assert "car-a" not in (tmp_path / "acl").read_text()
    assert "user car-b" in (tmp_path / "acl").read_text()
    written = (tmp_path / "passwords").stat().st_mtime_ns
    assert not remove_vehicle_login(tmp_path, "car-a")
    assert (tmp_path / "passwords").stat().st_mtime_ns == written  # nothing rewritten


@pytest.mark.parametrize("bad", ["a/b", "+", "", INGEST])
def test_one_vehicles_login_refuses_a_bad_id_and_the_ingest_user(bad: str, tmp_path: Path) -> None:
    update_broker_files(tmp_path, ["car-a"])
    before = (tmp_path / "passwords").read_text()
    with pytest.raises(ValueError, match="vehicle id"):
        rotate_vehicle_login(tmp_path, bad)
    with pytest.raises(ValueError, match="vehicle id"):
        remove_vehicle_login(tmp_path, bad)
    assert (tmp_path / "passwords").read_text() == before


def _rotate_many(
    directory: str, vehicle_ids: list[str], rounds: int, start_at: float
) -> dict[str, str]:
    """In another process: from ``start_at`` on, rotate each vehicle ``rounds`` times; the
    last passwords."""
    time.sleep(max(0.0, start_at - time.time()))
    last = {}
    for _ in range(rounds):
        for vehicle_id in vehicle_ids:
            last[vehicle_id] = rotate_vehicle_login(Path(directory), vehicle_id).password
    return last


def test_rotations_in_two_processes_at_once_all_land(tmp_path: Path) -> None:
    """Each process reads, changes and rewrites the files under the directory's lock, so
    neither loses the other's vehicles (without it, most runs lose some)."""
    update_broker_files(tmp_path, [])
    fleets = [[f"car-{p}-{i}" for i in range(10)] for p in ("a", "b")]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        start_at = time.time() + 1.5  # both processes started, so that they overlap
        futures = [pool.submit(_rotate_many, str(tmp_path), f, 20, start_at) for f in fleets]
        passwords = {k: v for f in futures for k, v in f.result(timeout=120).items()}
    logins = read_password_file(tmp_path / "passwords")
    assert sorted(logins) == sorted([INGEST, *fleets[0], *fleets[1]])
    for vehicle_id, password in passwords.items():
        assert verify_password_line(logins[vehicle_id], password), vehicle_id
    acl = (tmp_path / "acl").read_text()
    assert all(f"user {v}\n" in acl for v in passwords)


def test_reload_broker_signals_the_pid_in_the_file(tmp_path: Path) -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, _frame: received.append(signum))
    try:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{os.getpid()}\n")
        assert reload_broker(pid_file)
        assert _proc.wait_until(lambda: bool(received), 5)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert received == [signal.SIGHUP]


@pytest.mark.parametrize("text", [None, "", "mosquitto", "0", "-1", "99999999", "9" * 30])
def test_reload_broker_without_a_usable_pid_warns_and_says_false(
    text: str | None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    if text is not None:
        pid_file.write_text(text)
    with caplog.at_level(logging.WARNING, logger="cloud_ingest.provisioning"):
        assert not reload_broker(pid_file)
    assert "cannot tell the broker to reload" in caplog.text


# -- against a real broker ---------------------------------------------------------------------


@dataclass(frozen=True)
class AclBroker:
    port: int
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def acl_broker() -> Iterator[AclBroker]:
    root = make_service_dir("can2care-acl-")
    try:
        creds = [VehicleCredential(v, new_password()) for v in ("car-a", "car-b")]
        ingest_password = new_password()
        password_file, acl_file = write_broker_files(root, creds, ingest_password=ingest_password)
        port = free_port()
        settings = [
            "allow_anonymous false",
            f"password_file {password_file}",
            f"acl_file {acl_file}",
        ]
        with configured_broker(root, port, settings):
            passwords = {c.vehicle_id: c.password for c in creds}
            passwords[INGEST] = ingest_password
            yield AclBroker(port, passwords)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Client:
    """A paho client with its callbacks recorded."""

    mqtt: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    connect_rc: list[ReasonCode] = field(default_factory=list)
    published: dict[int, ReasonCode] = field(default_factory=dict)
    subscribed: dict[int, list[ReasonCode]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes) -> int:
        return self.mqtt.publish(topic, payload, qos=1).mid

    def subscribe(self, topic_filter: str) -> int:
        mid = self.mqtt.subscribe(topic_filter, qos=1)[1]
        assert mid is not None
        return mid

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        # The callbacks refer to this object: break the cycle so paho's sockets close now.
        self.mqtt.on_connect = self.mqtt.on_publish = None
        self.mqtt.on_subscribe = self.mqtt.on_message = None


def _connect(broker: AclBroker, user: str, password: str | None = None, v5: bool = True) -> Client:
    protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=protocol)
    client = Client(paho)

    def on_connect(
        c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: Properties | None
    ) -> None:
        client.connect_rc.append(rc)
        client.connected.set()
        if rc.is_failure:
            c.disconnect()  # no reconnection attempts with a refused login

    def on_publish(
        c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: Properties | None
    ) -> None:
        client.published[mid] = rc

    def on_subscribe(
        c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        client.subscribed[mid] = rcs

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        client.received.append((message.topic, bytes(message.payload)))

    paho.on_connect = on_connect
    paho.on_publish = on_publish
    paho.on_subscribe = on_subscribe
    paho.on_message = on_message
    paho.username_pw_set(user, broker.passwords[user] if password is None else password)
    paho.connect_async("127.0.0.1", broker.port)
    paho.loop_start()
    assert client.connected.wait(10)
    return client


def _ingest(broker: AclBroker, *filters: str) -> Client:
    client = _connect(broker, INGEST)
    assert not client.connect_rc[0].is_failure
    mids = [client.subscribe(f) for f in filters]
    assert _proc.wait_until(lambda: all(m in client.subscribed for m in mids), 10)
    for mid in mids:
        assert not any(rc.is_failure for rc in client.subscribed[mid]), client.subscribed[mid]
    return client


@pytest.mark.parametrize(
    "subscription", ["v1/+/telemetry", "$share/ingest/v1/+/telemetry"], ids=["plain", "shared"]
)
def test_a_vehicle_publishes_on_its_own_topic_and_ingest_receives(
    acl_broker: AclBroker, subscription: str
) -> None:
    ingest = _ingest(acl_broker, subscription)
    car = _connect(acl_broker, "car-a")
    try:
        mid = car.publish("v1/car-a/telemetry", b"batch 1")
        assert _proc.wait_until(lambda: mid in car.published, 10)
        assert not car.published[mid].is_failure
        assert _proc.wait_until(lambda: len(ingest.received) == 1, 10)
        assert ingest.received == [("v1/car-a/telemetry", b"batch 1")]
    finally:
        car.close()
        ingest.close()


def test_publishing_on_another_vehicles_topic_is_not_authorized_in_mqtt5(
    acl_broker: AclBroker,
) -> None:
    ingest = _ingest(acl_broker, "v1/+/telemetry", "v1/+/events")
    car = _connect(acl_broker, "car-a")
    try:
        denied = car.publish("v1/car-b/telemetry", b"forged")
        unknown = car.publish("v2/car-a/telemetry", b"elsewhere")
        allowed = car.publish("v1/car-a/events", b"mine")
        assert _proc.wait_until(lambda: len(car.published) == 3, 10)
        assert car.published[denied].value == NOT_AUTHORIZED
        assert car.published[unknown].value == NOT_AUTHORIZED
        assert not car.published[allowed].is_failure
        assert _proc.wait_until(lambda: len(ingest.received) >= 1, 10)
        assert ingest.received == [("v1/car-a/events", b"mine")]
    finally:
        car.close()
        ingest.close()


def test_an_unauthorized_mqtt311_publish_is_dropped_silently(acl_broker: AclBroker) -> None:
    ingest = _ingest(acl_broker, "v1/+/telemetry")
    car = _connect(acl_broker, "car-a", v5=False)
    try:
        denied = car.publish("v1/car-b/telemetry", b"forged")
        car.publish("v1/car-a/telemetry", b"mine")
        assert _proc.wait_until(lambda: len(car.published) == 2, 10)
        assert not car.published[denied].is_failure  # MQTT 3.1.1 PUBACK has no reason code
        assert _proc.wait_until(lambda: len(ingest.received) >= 1, 10)
        assert ingest.received == [("v1/car-a/telemetry", b"mine")]
    finally:
        car.close()
        ingest.close()


def test_a_vehicle_receives_nothing(acl_broker: AclBroker) -> None:
    """Mosquitto 2.0 grants the SUBSCRIBE, but checks ``read`` on every delivery."""
    ingest = _ingest(acl_broker, "v1/+/telemetry", "v1/+/status")
    car = _connect(acl_broker, "car-a")
    other = _connect(acl_broker, "car-b")
    try:
        for topic in ("v1/+/telemetry", "v1/car-a/status", "#"):
            car.subscribe(topic)
        assert _proc.wait_until(lambda: len(car.subscribed) == 3, 10)
        other.publish("v1/car-b/telemetry", b"b's batch")
        car.publish("v1/car-a/status", b'{"state":"online"}')
        assert _proc.wait_until(lambda: len(ingest.received) == 2, 10)
        assert not _proc.wait_until(lambda: bool(car.received), 0.5)
    finally:
        other.close()
        car.close()
        ingest.close()


@pytest.mark.parametrize("user", ["car-a", INGEST, "car-c"])
def test_a_wrong_password_is_refused_at_connect(acl_broker: AclBroker, user: str) -> None:
    client = _connect(acl_broker, user, password="wrong")
    try:
        assert client.connect_rc[0].is_failure
        # Mosquitto 2.0 answers a failed password check with CONNACK 135, not 134.
        assert client.connect_rc[0].value == NOT_AUTHORIZED
    finally:
        client.close()
