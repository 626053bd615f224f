"""The development service manager against real Mosquitto and PostgreSQL processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from can2care.devservices import (
    BinaryMissingError,
    DataDirError,
    PortInUseError,
    ServiceManager,
    mqtt_ping,
)
from can2care.devservices._proc import free_port


@pytest.fixture
def manager(service_dir: Path) -> Iterator[ServiceManager]:
    mgr = ServiceManager(service_dir / "run", durable=False)
    try:
        yield mgr
    finally:
        mgr.stop()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "can2care", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_start_reuse_stop_restart(manager: ServiceManager) -> None:
    services = manager.start()
    assert mqtt_ping(services.mqtt.host, services.mqtt.port)
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute("SELECT extname FROM pg_extension WHERE extname = 'timescaledb'")
        assert row.fetchone() == ("timescaledb",)
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("timescaledb",)
    assert [s.running for s in manager.status()] == [True, True]

    again = manager.start()
    assert again == services, "a second start reuses the running services"

    manager.stop()
    assert [s.running for s in manager.status()] == [False, False]
    assert manager.running() is None
    assert not mqtt_ping(services.mqtt.host, services.mqtt.port)

    restarted = manager.start()
    assert restarted.mqtt.port == services.mqtt.port, "ports of the last start are reused"
    assert restarted.postgres.port == services.postgres.port


def test_data_survives_restart(manager: ServiceManager) -> None:
    services = manager.start()
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    manager.stop()
    services = manager.start()
    with psycopg.connect(services.database_url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


def test_reset_deletes_the_data(manager: ServiceManager) -> None:
    manager.start()
    manager.reset()
    assert not (manager.run_dir / "postgres").exists()
    assert not manager.state_path.exists()


def test_explicit_busy_port_is_a_clear_error(manager: ServiceManager, busy_port: int) -> None:
    with pytest.raises(PortInUseError) as error:
        manager.start(mqtt_port=busy_port)
    assert str(error.value) == (
        f"MQTT port {busy_port} on 127.0.0.1 is already in use by another process; "
        "free it or choose another port"
    )
    with pytest.raises(PortInUseError, match=f"PostgreSQL port {busy_port}"):
        manager.start(mqtt_port=free_port(), pg_port=busy_port)


def test_cli_busy_port_prints_one_line(service_dir: Path, busy_port: int) -> None:
    result = _cli(
        "services", "--run-dir", str(service_dir / "run"), "start", "--mqtt-port", str(busy_port)
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"can2care: error: MQTT port {busy_port} on 127.0.0.1 is already in use by another "
        "process; free it or choose another port"
    ]


def test_cli_missing_broker_binary(service_dir: Path) -> None:
    missing = service_dir / "no-such-mosquitto"
    result = _cli(
        "services",
        "--run-dir",
        str(service_dir / "run"),
        "start",
        env={"CAN2CARE_MOSQUITTO_BIN": str(missing)},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"can2care: error: mosquitto binary not found at {missing} (from $CAN2CARE_MOSQUITTO_BIN)"
    ]


def test_missing_postgres_binaries(
    manager: ServiceManager, service_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAN2CARE_PG_BINDIR", str(service_dir))
    with pytest.raises(BinaryMissingError, match=f"postgres binary not found in {service_dir}"):
        manager.start()


def test_corrupt_data_dir_is_named(manager: ServiceManager) -> None:
    data = manager.run_dir / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "junk").write_text("not a cluster")
    with pytest.raises(DataDirError, match=r"holds no PostgreSQL cluster \(no PG_VERSION\)"):
        manager.start()


def test_damaged_cluster_is_named(manager: ServiceManager) -> None:
    manager.start()
    manager.stop()
    (manager.run_dir / "postgres" / "data" / "global" / "pg_control").unlink()
    with pytest.raises(DataDirError, match=r"is corrupt \(missing global/pg_control\)"):
        manager.start()


def test_foreign_version_cluster_is_named(manager: ServiceManager) -> None:
    data = manager.run_dir / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("13\n")
    with pytest.raises(DataDirError, match="holds a PostgreSQL 13 cluster, not 15"):
        manager.start()


def test_unreadable_state_file(manager: ServiceManager) -> None:
    manager.run_dir.mkdir(parents=True)
    manager.state_path.write_text("{not json")
    with pytest.raises(DataDirError, match=r"services\.json is unreadable"):
        manager.start()


def test_a_private_run_dir_serves_its_user_but_not_root(service_dir: Path) -> None:
    private = service_dir / "private"
    private.mkdir(mode=0o700)
    manager = ServiceManager(private / "run")
    if os.geteuid() == 0:  # root hands the servers to system users, who cannot enter it
        with pytest.raises(DataDirError, match="is not searchable by other users"):
            manager.start()
        return
    try:  # another user's servers run as that user, who can
        manager.start()
        assert [s.running for s in manager.status()] == [True, True]
    finally:
        manager.stop()


def test_cli_status_and_env(service_dir: Path) -> None:
    run_dir = str(service_dir / "run")
    assert _cli("services", "--run-dir", run_dir, "status").returncode == 3
    started = _cli("services", "--run-dir", run_dir, "start")
    try:
        assert started.returncode == 0, started.stderr
        status = _cli("services", "--run-dir", run_dir, "status")
        assert status.returncode == 0
        assert [line.split()[:2] for line in status.stdout.splitlines()] == [
            ["mosquitto", "running"],
            ["postgres", "running"],
        ]
        env = _cli("services", "--run-dir", run_dir, "env").stdout
        assert "export CAN2CARE_MQTT_URL=mqtt://127.0.0.1:" in env
        assert "export CAN2CARE_DATABASE_URL=postgresql://postgres@127.0.0.1:" in env
    finally:
        assert _cli("services", "--run-dir", run_dir, "stop").returncode == 0
    assert _cli("services", "--run-dir", run_dir, "status").returncode == 3


def test_cli_smoke_starts_and_stops(service_dir: Path) -> None:
    run_dir = str(service_dir / "run")
    result = _cli("smoke", "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr
    assert "MQTT       QoS 1 round trip" in result.stdout
    assert "smoke run passed" in result.stdout
    assert _cli("services", "--run-dir", run_dir, "status").returncode == 3
