"""The MQTT link against a real Mosquitto with mutual TLS and a password file: records go
out and are deleted after PUBACK; wrong credentials and a missing client certificate are
refused, logged with the reason, and lose nothing."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from can2care.devservices import MqttEndpoint
from can2care.devservices._proc import free_port
from edge_agent.config import MqttConfig, TlsConfig
from edge_agent.mqtt import MqttConfigError, MqttLink
from edge_agent.outbox import Outbox, Priority
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import configured_broker

from .._drive import wait_until


@dataclass(frozen=True)
class TlsBroker:
    port: int
    ca: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(d: Path) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=can2care test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=d,
    )
    for name, extra in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", None)):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=d,
        )
        sign = [
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.crt",
        ]
        if extra:
            (d / f"{name}.ext").write_text(extra + "\n")
            sign += ["-extfile", f"{name}.ext"]
        _openssl(*sign, cwd=d)


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[TlsBroker]:
    root = make_service_dir("can2care-tls-")
    try:
        _certificates(root)
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(root / "passwords"), "car", "s3cret"],
            check=True,
            capture_output=True,
        )
        for path in root.iterdir():
            path.chmod(0o644)
        port = free_port()
        settings = [
            f"cafile {root / 'ca.crt'}",
            f"certfile {root / 'server.crt'}",
            f"keyfile {root / 'server.key'}",
            "require_certificate true",
            "allow_anonymous false",
            f"password_file {root / 'passwords'}",
        ]
        with configured_broker(root, port, settings):
            yield TlsBroker(port, root / "ca.crt", root / "client.crt", root / "client.key")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _config(broker: TlsBroker, **changes: object) -> MqttConfig:
    tls = TlsConfig(ca_file=broker.ca, cert_file=broker.client_cert, key_file=broker.client_key)
    base: dict[str, object] = dict(
        host="localhost",
        port=broker.port,
        username="car",
        password="s3cret",
        tls=tls,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    base.update(changes)
    return MqttConfig(**base)  # type: ignore[arg-type]


def _subscribe(broker: TlsBroker, topic: str) -> tuple[mqtt.Client, list[bytes]]:
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(broker.ca),
        certfile=str(broker.client_cert),
        keyfile=str(broker.client_key),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    client.username_pw_set("car", "s3cret")
    client.on_message = lambda c, u, m: got.append(bytes(m.payload))
    client.connect("localhost", broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(0.3)
    return client, got


def _link(config: MqttConfig, outbox: Outbox) -> MqttLink:
    return MqttLink(
        config,
        outbox,
        client_id="can2care-tls-test",
        status_topic="v1/tls/status",
        status_payload=lambda online: b'{"state":"online"}' if online else b'{"state":"offline"}',
    )


def test_mutual_tls_with_a_password_delivers_and_deletes(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    subscriber, got = _subscribe(tls_broker, "v1/tls/telemetry")
    with Outbox(tmp_path / "o.sqlite") as outbox:
        for i in range(30):
            outbox.put("v1/tls/telemetry", f"record {i}".encode(), priority=Priority.TELEMETRY)
        link = _link(_config(tls_broker), outbox)
        link.start()
        try:
            assert link.wait_connected(15), link.stats.last_error
            assert wait_until(lambda: outbox.stats().records == 0)
        finally:
            link.stop()
    assert wait_until(lambda: len(got) == 30)
    subscriber.loop_stop()
    subscriber.disconnect()
    assert got == [f"record {i}".encode() for i in range(30)]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"password": "wrong"}, "the broker refused the connection: Not authorized"),
        ({"tls": "no client certificate"}, "CERTIFICATE_REQUIRED"),
    ],
)
def test_refused_connections_say_why_and_keep_the_records(
    tls_broker: TlsBroker,
    tmp_path: Path,
    changes: dict[str, object],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if changes.get("tls") == "no client certificate":
        changes = {"tls": TlsConfig(ca_file=tls_broker.ca)}
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put("v1/tls/telemetry", b"kept", priority=Priority.TELEMETRY)
        link = _link(_config(tls_broker, **changes), outbox)
        link.start()
        try:
            assert wait_until(lambda: reason in (link.stats.last_error or ""), 10), (
                link.stats.last_error
            )
            assert not link.wait_connected(0.5)
        finally:
            link.stop()
        assert outbox.stats().records == 1
    assert reason in caplog.text


def test_an_unreadable_certificate_is_a_config_error(tls_broker: TlsBroker, tmp_path: Path) -> None:
    missing = tmp_path / "missing.crt"
    with (
        Outbox(tmp_path / "o.sqlite") as outbox,
        pytest.raises(MqttConfigError, match=r"mqtt\.tls"),
    ):
        _link(_config(tls_broker, tls=TlsConfig(ca_file=missing)), outbox)


def test_a_clean_stop_logs_no_error(
    mqtt_broker: MqttEndpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_agent.mqtt")
    config = MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port)
    subscriber, got = _plain_subscriber(mqtt_broker, "v1/clean-stop/status")
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put("v1/clean-stop/telemetry", b"one", priority=Priority.TELEMETRY)
        link = MqttLink(
            config,
            outbox,
            client_id="can2care-clean-stop",
            status_topic="v1/clean-stop/status",
            status_payload=lambda online: b"online" if online else b"offline",
        )
        link.start()
        try:
            assert link.wait_connected(15), link.stats.last_error
            assert wait_until(lambda: outbox.stats().records == 0)
        finally:
            link.stop()
    assert wait_until(lambda: got[-1:] == [b"offline"], 5), got
    subscriber.loop_stop()
    subscriber.disconnect()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [f"{r.name}: {r.getMessage()}" for r in errors]


def _plain_subscriber(broker: MqttEndpoint, topic: str) -> tuple[mqtt.Client, list[bytes]]:
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.append(bytes(m.payload))
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(0.3)
    return client, got
