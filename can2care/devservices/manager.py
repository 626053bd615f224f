"""Start, stop and report the private development services under one run directory.

The run directory (``.run/`` by default) holds ``mosquitto/``, ``postgres/`` and
``services.json``, which records the ports and the broker's pid so that a later command can
find, reuse or stop what an earlier one started.  The machine's own services are never
touched: everything listens on free loopback ports chosen at first start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _proc
from .errors import DataDirError
from .mosquitto import Mosquitto, MqttEndpoint
from .postgres import PgEndpoint, Postgres

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "can2care"


@dataclass(frozen=True, slots=True)
class Services:
    """The endpoints of running private services."""

    mqtt: MqttEndpoint
    postgres: PgEndpoint
    database: str = DEFAULT_DATABASE

    @property
    def database_url(self) -> str:
        return self.postgres.dsn(self.database)

    def environment(self) -> dict[str, str]:
        """The variables that point the can2care services at these instances."""
        return {
            "CAN2CARE_MQTT_URL": self.mqtt.url,
            "CAN2CARE_DATABASE_URL": self.database_url,
        }


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    running: bool
    endpoint: str | None


def default_run_dir() -> Path:
    """``$CAN2CARE_RUN_DIR`` or ``./.run``."""
    return Path(os.environ.get("CAN2CARE_RUN_DIR", ".run")).absolute()


class ServiceManager:
    """The private Mosquitto and PostgreSQL of one run directory."""

    def __init__(self, run_dir: Path | None = None, *, durable: bool = True) -> None:
        self.run_dir = (run_dir or default_run_dir()).absolute()
        self.state_path = self.run_dir / "services.json"
        self.mosquitto = Mosquitto(self.run_dir / "mosquitto")
        self.postgres = Postgres(self.run_dir / "postgres", durable=durable)

    def _load(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise DataDirError(f"{self.state_path} is unreadable ({exc}); delete it") from exc
        if not isinstance(state, dict):
            raise DataDirError(f"{self.state_path} is not a JSON object; delete it")
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_path)

    def start(self, *, mqtt_port: int | None = None, pg_port: int | None = None) -> Services:
        """Start what is not running yet (reusing what is) and return the endpoints.

        Explicit ports must be free; otherwise the ports of the previous start are reused
        when free, and new free ports are picked when not.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self._load()
        mqtt_state = state.get("mqtt", {})
        host = self.mosquitto.host
        pid = mqtt_state.get("pid")
        if pid and self.mosquitto.running(pid) and mqtt_port in (None, mqtt_state.get("port")):
            mqtt = MqttEndpoint(host, int(mqtt_state["port"]))
        else:
            port = _proc.choose_port("MQTT", host, mqtt_port, mqtt_state.get("port"))
            mqtt, pid = self.mosquitto.start(port)
            state["mqtt"] = {"host": host, "port": port, "pid": pid}
            self._save(state)

        pg_state = state.get("postgres", {})
        if self.postgres.running() and pg_port in (None, pg_state.get("port")):
            pg = PgEndpoint(self.postgres.host, int(pg_state["port"]))
        else:
            if self.postgres.running():
                self.postgres.stop()
            port = _proc.choose_port(
                "PostgreSQL", self.postgres.host, pg_port, pg_state.get("port")
            )
            pg = self.postgres.start(port)
            state["postgres"] = {"host": pg.host, "port": pg.port}
            self._save(state)
        self.postgres.ensure_database(pg.port, DEFAULT_DATABASE)
        return Services(mqtt, pg)

    def running(self) -> Services | None:
        """The endpoints when both services run, else None."""
        state = self._load()
        statuses = self.status(state)
        if not all(status.running for status in statuses):
            return None
        return Services(
            MqttEndpoint(state["mqtt"]["host"], int(state["mqtt"]["port"])),
            PgEndpoint(state["postgres"]["host"], int(state["postgres"]["port"])),
        )

    def status(self, state: dict[str, Any] | None = None) -> list[ServiceStatus]:
        state = self._load() if state is None else state
        mqtt_state = state.get("mqtt", {})
        pid = mqtt_state.get("pid")
        mqtt_up = bool(pid) and self.mosquitto.running(int(pid))
        pg_state = state.get("postgres", {})
        pg_up = self.postgres.running() and "port" in pg_state
        return [
            ServiceStatus(
                "mosquitto",
                mqtt_up,
                f"mqtt://{mqtt_state['host']}:{mqtt_state['port']}" if mqtt_up else None,
            ),
            ServiceStatus(
                "postgres",
                pg_up,
                PgEndpoint(pg_state["host"], int(pg_state["port"])).dsn(DEFAULT_DATABASE)
                if pg_up
                else None,
            ),
        ]

    def stop(self) -> None:
        """Stop both services if they run (found by their directories if the state is lost)."""
        try:
            pid = self._load().get("mqtt", {}).get("pid")
        except DataDirError as exc:
            log.warning("%s; looking for the broker by its configuration file", exc)
            pid = None
        self.mosquitto.stop(int(pid) if pid else self.mosquitto.find_pid())
        self.postgres.stop()
        log.info("stopped the services in %s", self.run_dir)

    def reset(self) -> None:
        """Stop both services and delete their data."""
        self.stop()
        for path in (self.mosquitto.root, self.postgres.root):
            shutil.rmtree(path, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
