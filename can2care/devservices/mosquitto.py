"""A private Mosquitto broker for development, demos and tests."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import _proc
from .errors import PortInUseError, ServiceStartError

log = logging.getLogger(__name__)

_HINT = "install the Debian package 'mosquitto' (scripts/setup does)"


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where the broker listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def mqtt_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether an MQTT 3.1.1 broker at ``host:port`` accepts a connection (CONNECT/CONNACK)."""
    client_id = b"can2care-probe"
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol name, level 4, clean session, 10 s
    payload = struct.pack("!H", len(client_id)) + client_id
    body = variable + payload
    packet = bytes([0x10, len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(packet)
            reply = sock.recv(4)
            sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    return reply[:2] == b"\x20\x02" and reply[3:4] == b"\x00"


class Mosquitto:
    """One private broker whose files live in ``root`` (config, persistence, log).

    The broker listens on the loopback address only and allows anonymous clients; it is a
    development and test broker, not a production one (see docs/operations guide).
    """

    def __init__(self, root: Path, *, host: str = _proc.LOOPBACK) -> None:
        self.root = root
        self.host = host
        self.config_path = root / "mosquitto.conf"
        self.log_path = root / "mosquitto.log"
        self.stderr_path = root / "mosquitto.stderr"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, port: int, *, timeout: float = 10.0) -> tuple[MqttEndpoint, int]:
        """Start the broker on ``port`` and wait until it answers MQTT; return (endpoint, pid)."""
        binary = _proc.find_binary("mosquitto", hint=_HINT, override="CAN2CARE_MOSQUITTO_BIN")
        if not _proc.port_is_free(self.host, port):
            raise PortInUseError("MQTT", self.host, port)
        owner = _proc.service_user("mosquitto")
        _proc.prepare_dir(self.root, owner, mode=0o755)
        (self.root / "data").mkdir(exist_ok=True)
        _proc.chown_tree(self.root, owner)
        self.config_path.write_text(self._config(port, owner is not None))
        with self.stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [str(binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        self._process = process
        ready = _proc.wait_until(
            lambda: process.poll() is not None or mqtt_ping(self.host, port), timeout
        )
        if process.poll() is not None or not ready:
            self._fail(process, port)
        log.info("mosquitto ready on %s:%d (pid %d)", self.host, port, process.pid)
        return MqttEndpoint(self.host, port), process.pid

    def _fail(self, process: subprocess.Popen[bytes], port: int) -> None:
        if process.poll() is None:
            _proc.terminate(process.pid)
        process.wait()
        lines = _proc.tail(self.stderr_path) + _proc.tail(self.log_path)
        text = " ".join(lines)
        if "Address already in use" in text:
            raise PortInUseError("MQTT", self.host, port)
        detail = next((line for line in reversed(lines) if "rror" in line), "no error logged")
        raise ServiceStartError(
            f"mosquitto did not become ready on {self.host}:{port}: {detail.strip()} "
            f"(log: {self.log_path})"
        )

    def _config(self, port: int, as_root: bool) -> str:
        lines = [
            "# Written by can2care for a private development broker; rewritten at each start.",
            "per_listener_settings false",
            f"listener {port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.root / 'data'}{os.sep}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
        ]
        if as_root:
            lines.append("user mosquitto")
        return "\n".join(lines) + "\n"

    def stop(self, pid: int | None = None, *, timeout: float = 10.0) -> None:
        """Stop the broker started by this object, or the one with ``pid``."""
        if self._process is not None:
            _proc.terminate(self._process.pid, timeout)
            self._process.wait()
            self._process = None
        elif pid is not None and self.running(pid):
            _proc.terminate(pid, timeout)

    def find_pid(self) -> int | None:
        """The pid of a broker running with this directory's configuration, if any."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self.running(int(entry.name)):
                return int(entry.name)
        return None

    def running(self, pid: int) -> bool:
        """Whether ``pid`` is this directory's broker."""
        return _proc.pid_alive(pid, str(self.config_path))
