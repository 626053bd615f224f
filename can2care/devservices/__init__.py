"""Private development services: a Mosquitto broker and PostgreSQL with TimescaleDB.

They run under a run directory of their own on free loopback ports, for development, the
demo and the test suite; the machine's own services are left alone.
"""

from .errors import (
    BinaryMissingError,
    DataDirError,
    PortInUseError,
    ServiceError,
    ServiceStartError,
)
from .manager import DEFAULT_DATABASE, ServiceManager, Services, ServiceStatus, default_run_dir
from .mosquitto import Mosquitto, MqttEndpoint, mqtt_ping
from .postgres import PG_MAJOR, PgEndpoint, Postgres

__all__ = [
    "DEFAULT_DATABASE",
    "PG_MAJOR",
    "BinaryMissingError",
    "DataDirError",
    "Mosquitto",
    "MqttEndpoint",
    "PgEndpoint",
    "PortInUseError",
    "Postgres",
    "ServiceError",
    "ServiceManager",
    "ServiceStartError",
    "ServiceStatus",
    "Services",
    "default_run_dir",
    "mqtt_ping",
]
