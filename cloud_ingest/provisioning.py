"""Broker credentials for vehicles: the Mosquitto password file and ACL file.

Each vehicle logs in to Mosquitto with its vehicle id as user name and a password of its own,
and may publish only under its own ``v1/<vehicle_id>/`` (telemetry, events, status); the ingest
service logs in as one user that may read those topics of every vehicle (docs/mqtt-topics.md).

The formatters (``mosquitto_password_line``, ``acl_text``) are pure; ``write_broker_files``
writes both files atomically, and ``update_broker_files`` rewrites them for a changed fleet,
keeping the password lines of vehicles already provisioned and making passwords for new ones.
``rotate_vehicle_login`` gives one vehicle a new password (adding its login if it has none)
and ``remove_vehicle_login`` takes one away, each keeping every other login (the care team's
API calls them, docs/api.md, and answers the password once). Plain passwords exist only
once, in what these functions return; the CLI writes them to a credentials file
(``write_credentials``, JSON, mode 0600) from which each vehicle gets its own::

    {"version": 1, "vehicles": [{"vehicle_id": "veh-1", "password": "..."}, ...]}

The functions that read and rewrite the files (``update_broker_files``, ``rotate_...``,
``remove_...``) hold an exclusive ``flock`` on ``.can2care.lock`` in the directory while they
do, so processes changing logins at once (API workers, the CLI) never lose each other's change.

The broker reads its files at start and again on SIGHUP, so after writing, the caller signals
the broker (``kill -HUP``, or ``reload_broker`` with its pid file) to apply the change.

Errors: ``ValueError`` for a vehicle id or user name that cannot be a topic level, a duplicate,
a vehicle id that is the ingest user's, or a password line that is not in Mosquitto 2's
PBKDF2-SHA512 format; ``OSError`` when the files cannot be read or written.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import TOPIC_KINDS

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INGEST_USER",
    "VehicleCredential",
    "acl_text",
    "mosquitto_password_line",
    "new_password",
    "read_credentials",
    "read_password_file",
    "reload_broker",
    "remove_vehicle_login",
    "rotate_vehicle_login",
    "update_broker_files",
    "validate_vehicle_id",
    "verify_password_line",
    "write_broker_files",
    "write_credentials",
]

DEFAULT_INGEST_USER = "can2care-ingest"

# A vehicle publishes under <prefix>/<vehicle_id>/<kind>, kind one of the agent's
# TOPIC_KINDS (docs/mqtt-topics.md).
# A vehicle id is one topic level, never a wildcard (the agent's configuration enforces the same).
_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Mosquitto 2.0's mosquitto_passwd: PBKDF2-HMAC-SHA512, 12 bytes of salt, 64 bytes of hash.
_PBKDF2_ID = "7"
_SALT_BYTES = 12
_FILE_MODE = 0o640
# Held (flock, exclusive) while the password file and ACL are read and rewritten.
_LOCK_NAME = ".can2care.lock"


@dataclass(frozen=True, slots=True)
class VehicleCredential:
    """A vehicle's broker login: its id is its user name."""

    vehicle_id: str
    password: str

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return f"VehicleCredential(vehicle_id={self.vehicle_id!r}, password='***')"


def new_password() -> str:
    """A fresh random password (32 random bytes, URL-safe text)."""
    return secrets.token_urlsafe(32)


def validate_vehicle_id(vehicle_id: str, *, what: str = "vehicle id") -> str:
    """``vehicle_id`` if it is 1-64 of ``A-Z a-z 0-9 _ . -``; otherwise a ValueError naming it."""
    if not isinstance(vehicle_id, str) or not _ID_RE.fullmatch(vehicle_id):
        raise ValueError(
            f"{what} {vehicle_id!r} is not a valid MQTT topic level: "
            "use 1 to 64 characters of A-Z a-z 0-9 _ . -"
        )
    return vehicle_id


def _validate_prefix(prefix: str) -> str:
    for level in prefix.split("/"):
        validate_vehicle_id(level, what=f"topic prefix {prefix!r} has a level")
    return prefix


def _pbkdf2(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


def mosquitto_password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = 101
) -> str:
    """One line of a Mosquitto 2 password file, as ``mosquitto_passwd`` writes it (no newline).

    The format is ``user:$7$<iterations>$<base64 salt>$<base64 hash>`` with the hash
    PBKDF2-HMAC-SHA512 over the UTF-8 password and the raw salt (12 random bytes unless given);
    101 iterations is mosquitto_passwd's default.
    """
    validate_vehicle_id(username, what="user name")
    if iterations < 1:
        raise ValueError(f"iterations must be positive, not {iterations}")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = _pbkdf2(password, salt, iterations)
    encoded_salt = base64.b64encode(salt).decode("ascii")
    encoded_hash = base64.b64encode(digest).decode("ascii")
    return f"{username}:${_PBKDF2_ID}${iterations}${encoded_salt}${encoded_hash}"


def verify_password_line(line: str, password: str) -> bool:
    """Whether ``password`` matches a Mosquitto 2 PBKDF2-SHA512 password-file line."""
    _user, sep, stored = line.strip().partition(":")
    fields = stored.split("$")
    if not sep or len(fields) != 5 or fields[0] or fields[1] != _PBKDF2_ID:
        raise ValueError(f"not a Mosquitto PBKDF2-SHA512 password line: {line[:40]!r}")
    try:
        iterations = int(fields[2])
        salt = base64.b64decode(fields[3], validate=True)
        expected = base64.b64decode(fields[4], validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError(f"malformed Mosquitto password line: {line[:40]!r}") from exc
    return hmac.compare_digest(_pbkdf2(password, salt, iterations), expected)


def acl_text(
    vehicle_ids: Iterable[str], *, ingest_user: str = DEFAULT_INGEST_USER, prefix: str = "v1"
) -> str:
    """A Mosquitto ACL file: vehicles write only their own topics; the ingest user reads all.

    It uses an explicit ``user`` block per vehicle rather than ``pattern write v1/%u/...``
    lines: Mosquitto applies ``pattern`` lines to every authenticated user, the ingest user and
    any later service account included, so a pattern would grant more than "vehicles"; the
    explicit blocks grant exactly the provisioned vehicles and list them for an audit. The
    password file must be rewritten for every new vehicle anyway, so the ACL costs no extra
    reload. A vehicle gets ``write`` only, so it receives nothing (Mosquitto 2.0 accepts its
    SUBSCRIBE but checks ``read`` on every delivery); a user not named in the file gets nothing.

    Mosquitto 2 checks a shared subscription (``$share/<group>/v1/+/telemetry``) against the
    topic filter without its ``$share/<group>/`` part, so the ingest user's ``read`` lines cover
    its shared subscriptions too.
    """
    ingest_user = validate_vehicle_id(ingest_user, what="ingest user")
    prefix = _validate_prefix(prefix)
    ids = _unique_ids(vehicle_ids, ingest_user)
    lines = [
        "# Written by can2care provisioning; rewritten whenever the fleet changes.",
        f"# Vehicles may publish only under their own {prefix}/<vehicle_id>/.",
        "",
        f"user {ingest_user}",
        *(f"topic read {prefix}/+/{kind}" for kind in TOPIC_KINDS),
    ]
    for vehicle_id in ids:
        lines += ["", f"user {vehicle_id}"]
        lines += [f"topic write {prefix}/{vehicle_id}/{kind}" for kind in TOPIC_KINDS]
    return "\n".join(lines) + "\n"


def _unique_ids(vehicle_ids: Iterable[str], ingest_user: str) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    for vehicle_id in vehicle_ids:
        validate_vehicle_id(vehicle_id)
        if vehicle_id in seen:
            raise ValueError(f"vehicle id {vehicle_id!r} appears more than once")
        if vehicle_id == ingest_user:
            raise ValueError(f"vehicle id {vehicle_id!r} is the ingest service's user name")
        seen.add(vehicle_id)
        ids.append(vehicle_id)
    return ids


def _password_text(
    credentials: Sequence[VehicleCredential], ingest_user: str, ingest_password: str
) -> str:
    _unique_ids((c.vehicle_id for c in credentials), ingest_user)
    lines = [mosquitto_password_line(ingest_user, ingest_password)]
    lines += [mosquitto_password_line(c.vehicle_id, c.password) for c in credentials]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (mode 0640) so that a reader sees the old or new file."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(_FILE_MODE)
        _keep_owner(path, tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _keep_owner(path: Path, tmp: Path) -> None:
    """Give the new file the old one's owner and group, so the broker can still read it."""
    try:
        old = path.stat()
    except FileNotFoundError:
        return
    try:
        os.chown(tmp, old.st_uid, old.st_gid)
    except PermissionError:
        log.warning(
            "cannot keep the owner and group of %s; check that the broker can read it", path
        )


def write_broker_files(
    directory: Path,
    credentials: Iterable[VehicleCredential],
    *,
    ingest_password: str,
    ingest_user: str = DEFAULT_INGEST_USER,
    prefix: str = "v1",
) -> tuple[Path, Path]:
    """Write ``passwords`` and ``acl`` in ``directory``, each atomically with mode 0640.

    Everything is validated before either file is touched. A file that already exists keeps its
    owner and group, so a broker running as another user in that group can still read it.
    Returns (password file, ACL file); signal the broker (SIGHUP) to load them.
    """
    creds = list(credentials)
    ingest_user = validate_vehicle_id(ingest_user, what="ingest user")
    passwords = _password_text(creds, ingest_user, ingest_password)
    acl = acl_text((c.vehicle_id for c in creds), ingest_user=ingest_user, prefix=prefix)
    password_path = directory / "passwords"
    acl_path = directory / "acl"
    _write_atomically(password_path, passwords)
    _write_atomically(acl_path, acl)
    log.info("wrote broker credentials for %d vehicles to %s", len(creds), directory)
    return password_path, acl_path


def _password_lines_text(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


def read_password_file(path: Path) -> dict[str, str]:
    """The lines of a Mosquitto password file by user name (empty if there is no file)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    lines: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, _hash = line.partition(":")
        if not sep or not user:
            raise ValueError(f"{path}:{number}: not a 'user:hash' password line")
        lines[user] = line
    return lines


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """The directory (made if missing) under an exclusive lock of every process that rewrites
    its files: the lock is ``flock`` on ``.can2care.lock`` there, released when it closes."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_logins(
    directory: Path, lines: Mapping[str, str], *, ingest_user: str, prefix: str
) -> list[str]:
    """Write ``lines`` (user name -> password line, in order) as ``passwords``, and the ACL for
    every user in it but ``ingest_user``; the vehicle ids are returned. The ACL is made (and so
    every id checked) before either file is touched."""
    ids = [user for user in lines if user != ingest_user]
    acl = acl_text(ids, ingest_user=ingest_user, prefix=prefix)
    _write_atomically(directory / "passwords", _password_lines_text(list(lines.values())))
    _write_atomically(directory / "acl", acl)
    return ids


def update_broker_files(
    directory: Path,
    vehicle_ids: Iterable[str],
    *,
    ingest_user: str = DEFAULT_INGEST_USER,
    prefix: str = "v1",
) -> tuple[list[VehicleCredential], str | None]:
    """Rewrite ``passwords`` and ``acl`` in ``directory`` for exactly ``vehicle_ids``.

    A vehicle (or the ingest user) already in the password file keeps its line, so its login
    does not change; a new one gets a fresh password; a vehicle no longer listed loses its
    login. Returns the new vehicles' credentials and the ingest user's new password (None when
    it kept its line): hand them out, they are not kept in plain text anywhere else.
    """
    ingest_user = validate_vehicle_id(ingest_user, what="ingest user")
    ids = _unique_ids(vehicle_ids, ingest_user)
    prefix = _validate_prefix(prefix)
    with _locked(directory):
        existing = read_password_file(directory / "passwords")
        ingest_password = None
        if ingest_user in existing:
            lines = {ingest_user: existing[ingest_user]}
        else:
            ingest_password = new_password()
            lines = {ingest_user: mosquitto_password_line(ingest_user, ingest_password)}
        fresh: list[VehicleCredential] = []
        for vehicle_id in ids:
            if vehicle_id in existing:
                lines[vehicle_id] = existing[vehicle_id]
            else:
                credential = VehicleCredential(vehicle_id, new_password())
                fresh.append(credential)
                lines[vehicle_id] = mosquitto_password_line(vehicle_id, credential.password)
        _write_logins(directory, lines, ingest_user=ingest_user, prefix=prefix)
    log.info("broker logins for %d vehicles in %s (%d new)", len(ids), directory, len(fresh))
    return fresh, ingest_password


def _one_vehicle(vehicle_id: str, ingest_user: str, prefix: str) -> tuple[str, str, str]:
    vehicle_id = validate_vehicle_id(vehicle_id)
    ingest_user = validate_vehicle_id(ingest_user, what="ingest user")
    if vehicle_id == ingest_user:
        raise ValueError(f"vehicle id {vehicle_id!r} is the ingest service's user name")
    return vehicle_id, ingest_user, _validate_prefix(prefix)


def rotate_vehicle_login(
    directory: Path,
    vehicle_id: str,
    *,
    ingest_user: str = DEFAULT_INGEST_USER,
    prefix: str = "v1",
) -> VehicleCredential:
    """Give ``vehicle_id`` a new broker password in ``directory`` and return it.

    The vehicle's line in ``passwords`` is replaced (or added at the end when it has none), so
    its old password stops working once the broker reloads; every other line is kept, and the
    ACL is rewritten for the vehicles in the password file. The password exists in plain text
    only in the returned credential.
    """
    vehicle_id, ingest_user, prefix = _one_vehicle(vehicle_id, ingest_user, prefix)
    credential = VehicleCredential(vehicle_id, new_password())
    line = mosquitto_password_line(vehicle_id, credential.password)
    with _locked(directory):
        lines = read_password_file(directory / "passwords")
        replaced = vehicle_id in lines
        lines[vehicle_id] = line  # a known user keeps its place
        _write_logins(directory, lines, ingest_user=ingest_user, prefix=prefix)
    log.info(
        "broker login of %s %s in %s", vehicle_id, "rotated" if replaced else "added", directory
    )
    return credential


def remove_vehicle_login(
    directory: Path,
    vehicle_id: str,
    *,
    ingest_user: str = DEFAULT_INGEST_USER,
    prefix: str = "v1",
) -> bool:
    """Remove ``vehicle_id``'s line from ``passwords`` and its block from the ACL.

    Every other line is kept. False (and nothing written) when the vehicle had no login.
    """
    vehicle_id, ingest_user, prefix = _one_vehicle(vehicle_id, ingest_user, prefix)
    with _locked(directory):
        lines = read_password_file(directory / "passwords")
        if lines.pop(vehicle_id, None) is None:
            return False
        _write_logins(directory, lines, ingest_user=ingest_user, prefix=prefix)
    log.info("broker login of %s removed from %s", vehicle_id, directory)
    return True


def reload_broker(pid_file: Path) -> bool:
    """Send SIGHUP to the broker whose process id is in ``pid_file``, so that it reads its
    password file and ACL again. False, with a warning logged, when the file is missing or
    holds no process id, or the process cannot be signalled."""
    try:
        pid = int(pid_file.read_text("utf-8").strip())
        if pid <= 0:  # 0 and negative ids signal whole process groups
            raise ValueError(f"{pid} is not a process id")
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError, OverflowError) as exc:
        log.warning("cannot tell the broker to reload (pid file %s): %s", pid_file, exc)
        return False
    log.info("sent SIGHUP to the broker (pid %d)", pid)
    return True


_CREDENTIALS_VERSION = 1


def write_credentials(path: Path, credentials: Sequence[VehicleCredential]) -> None:
    """Write a credentials file (JSON, mode 0600, replaced atomically)."""
    document = {
        "version": _CREDENTIALS_VERSION,
        "vehicles": [{"vehicle_id": c.vehicle_id, "password": c.password} for c in credentials],
    }
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
            handle.write("\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_credentials(path: Path) -> list[VehicleCredential]:
    """The credentials in a file `write_credentials` wrote; ValueError naming the problem."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the credentials: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != _CREDENTIALS_VERSION:
        raise ValueError(f"{path}: not a version {_CREDENTIALS_VERSION} credentials file")
    vehicles = document.get("vehicles")
    if not isinstance(vehicles, list) or not vehicles:
        raise ValueError(f"{path}: 'vehicles' must be a non-empty list")
    credentials = []
    for i, entry in enumerate(vehicles):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("vehicle_id"), str)
            and isinstance(entry.get("password"), str)
        ):
            raise ValueError(f"{path}: vehicles[{i}] needs a 'vehicle_id' and a 'password'")
        credentials.append(VehicleCredential(entry["vehicle_id"], entry["password"]))
    return credentials
