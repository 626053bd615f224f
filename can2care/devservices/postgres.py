"""A private PostgreSQL cluster with TimescaleDB preloaded, for development, demos and tests."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import _proc
from .errors import BinaryMissingError, DataDirError, PortInUseError, ServiceStartError

log = logging.getLogger(__name__)

PG_MAJOR = 15
SUPERUSER = "postgres"
_HINT = f"install the Debian package 'postgresql-{PG_MAJOR}' (scripts/setup does)"


@dataclass(frozen=True, slots=True)
class PgEndpoint:
    """Where the cluster listens; the private cluster trusts connections from loopback."""

    host: str
    port: int
    user: str = SUPERUSER

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"


def _bindir() -> Path:
    """``$CAN2CARE_PG_BINDIR``, Debian's directory for the major version, or ``PATH``."""
    override = os.environ.get("CAN2CARE_PG_BINDIR")
    if override:
        if not (Path(override) / "postgres").is_file():
            raise BinaryMissingError(
                f"postgres binary not found in {override} (from $CAN2CARE_PG_BINDIR)"
            )
        return Path(override)
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (debian / "postgres").is_file():
        return debian
    return _proc.find_binary("postgres", hint=_HINT).parent


class Postgres:
    """One private cluster whose data directory is ``root/data``.

    ``durable=False`` turns fsync and synchronous commit off: for throw-away test clusters
    only, where speed matters and a crash may lose the data.
    """

    def __init__(self, root: Path, *, host: str = _proc.LOOPBACK, durable: bool = True) -> None:
        self.root = root
        self.host = host
        self.durable = durable
        self.data_dir = root / "data"
        self.log_path = root / "postgres.log"
        self._bin: Path | None = None

    @property
    def bindir(self) -> Path:
        if self._bin is None:
            self._bin = _bindir()
            for tool in ("postgres", "initdb", "pg_ctl", "psql"):
                if not (self._bin / tool).is_file():
                    raise BinaryMissingError(f"{tool} binary not found in {self._bin}: {_HINT}")
        return self._bin

    def check_timescaledb(self) -> None:
        """Raise :class:`BinaryMissingError` when the TimescaleDB extension is not installed."""
        sharedir = self._config_value("--sharedir") or f"/usr/share/postgresql/{PG_MAJOR}"
        pkglibdir = self._config_value("--pkglibdir") or f"/usr/lib/postgresql/{PG_MAJOR}/lib"
        control = Path(sharedir) / "extension" / "timescaledb.control"
        library = Path(pkglibdir) / "timescaledb.so"
        if not control.is_file() or not library.is_file():
            raise BinaryMissingError(
                f"the TimescaleDB extension is not installed for PostgreSQL {PG_MAJOR} "
                f"(no {control if not control.is_file() else library}); scripts/setup builds it"
            )

    def _config_value(self, flag: str) -> str | None:
        pg_config = self.bindir / "pg_config"
        if not pg_config.is_file():
            return None
        out = subprocess.run([str(pg_config), flag], capture_output=True, text=True, check=False)
        return out.stdout.strip() or None

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = _proc.service_user(SUPERUSER)
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceStartError(
                f"{Path(args[0]).name} failed: {message[-1] if message else 'no output'}"
            )
        return result

    def _check_data_dir(self) -> bool:
        """Whether a cluster already exists; raises for a directory that is not one."""
        if not self.data_dir.exists():
            return False
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.is_file():
            if any(self.data_dir.iterdir()):
                raise DataDirError(
                    f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION);"
                    " remove it or run 'can2care services reset'"
                )
            return False
        version = version_file.read_text().strip()
        if version != str(PG_MAJOR):
            raise DataDirError(
                f"{self.data_dir} holds a PostgreSQL {version or '?'} cluster, not "
                f"{PG_MAJOR}; remove it or run 'can2care services reset'"
            )
        for needed in ("global/pg_control", "postgresql.conf", "base"):
            if not (self.data_dir / needed).exists():
                raise DataDirError(
                    f"{self.data_dir} is corrupt (missing {needed}); "
                    "remove it or run 'can2care services reset'"
                )
        return True

    def init(self) -> None:
        """Create the cluster when it does not exist yet."""
        owner = _proc.service_user(SUPERUSER)
        _proc.prepare_dir(self.root, owner, mode=0o755)
        if self._check_data_dir():
            return
        _proc.prepare_dir(self.data_dir, owner)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ]
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'can2care.conf'\n")
        log.info("initialised PostgreSQL cluster in %s", self.data_dir)

    def _settings(self, port: int) -> str:
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "300",
            "shared_buffers": "'256MB'",
            "max_wal_size": "'2GB'",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        body = "".join(f"{key} = {value}\n" for key, value in settings.items())
        return "# Written by can2care at each start of the private cluster.\n" + body

    def start(self, port: int, *, timeout: float = 60.0) -> PgEndpoint:
        """Initialise if needed, start on ``port`` and wait until it accepts connections."""
        self.check_timescaledb()
        if not _proc.port_is_free(self.host, port):
            raise PortInUseError("PostgreSQL", self.host, port)
        self.init()
        owner = _proc.service_user(SUPERUSER)
        conf = self.data_dir / "can2care.conf"
        conf.write_text(self._settings(port))
        if owner is not None:
            os.chown(conf, owner.pw_uid, owner.pw_gid)
        if self.log_path.exists() and owner is not None:
            os.chown(self.log_path, owner.pw_uid, owner.pw_gid)
        result = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            check=False,
        )
        if result.returncode != 0:
            self._fail(port, result.stderr)
        self._run(
            [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(port), "-t", "10"]
        )
        log.info("PostgreSQL ready on %s:%d (%s)", self.host, port, self.data_dir)
        return PgEndpoint(self.host, port)

    def _fail(self, port: int, stderr: str) -> None:
        lines = _proc.tail(self.log_path, 40)
        text = " ".join(lines) + stderr
        if "Address already in use" in text or "could not bind" in text:
            raise PortInUseError("PostgreSQL", self.host, port)
        fatal = [line for line in lines if re.search(r"FATAL|PANIC|ERROR", line)]
        detail = fatal[-1] if fatal else (stderr.strip().splitlines() or ["no error logged"])[-1]
        if "database files are incompatible" in text or "invalid checkpoint" in text.lower():
            raise DataDirError(
                f"{self.data_dir} is corrupt or incompatible: {detail.strip()}; "
                "run 'can2care services reset' to start afresh"
            )
        raise ServiceStartError(
            f"PostgreSQL did not start on {self.host}:{port}: {detail.strip()} "
            f"(log: {self.log_path})"
        )

    def running(self) -> bool:
        """Whether the cluster in this data directory is running."""
        if not (self.data_dir / "PG_VERSION").is_file():
            return False
        return (
            self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status"], check=False
            ).returncode
            == 0
        )

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the cluster (fast shutdown) if it runs."""
        if not self.running():
            return
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
            ]
        )

    def psql(self, port: int, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` through psql and return its unaligned output."""
        result = self._run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(port),
                "-U",
                SUPERUSER,
                "-d",
                dbname,
                "-c",
                sql,
            ]
        )
        return result.stdout.strip()

    def ensure_database(self, port: int, dbname: str) -> None:
        """Create ``dbname`` with the timescaledb extension unless it exists."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", dbname):
            raise ValueError(f"database name {dbname!r} must be a lower-case SQL identifier")
        exists = self.psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'")
        if not exists:
            self.psql(port, f"CREATE DATABASE {dbname}")
        self.psql(port, "CREATE EXTENSION IF NOT EXISTS timescaledb", dbname)
