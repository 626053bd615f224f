"""Process, port and privilege helpers shared by the service launchers."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import BinaryMissingError, DataDirError, PortInUseError

LOOPBACK = "127.0.0.1"


def find_binary(
    name: str, search: Iterable[Path] = (), *, hint: str, override: str | None = None
) -> Path:
    """Return the path of ``name``.

    The environment variable ``override``, when set, names the binary and nothing else is
    tried; otherwise ``search``, then ``PATH`` and ``/usr/sbin`` are searched.
    """
    if override and (given := os.environ.get(override)):
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BinaryMissingError(f"{name} binary not found at {given} (from ${override})")
        return path
    for folder in search:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise BinaryMissingError(f"{name} binary not found: {hint}")
    return Path(found)


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP listener could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def choose_port(service: str, host: str, wanted: int | None, previous: int | None) -> int:
    """The port to start ``service`` on.

    An explicitly ``wanted`` port must be free (else :class:`PortInUseError`); otherwise the
    port used last time is reused when free, and a fresh free port is picked when not.
    """
    if wanted is not None:
        if not port_is_free(host, wanted):
            raise PortInUseError(service, host, wanted)
        return wanted
    if previous is not None and port_is_free(host, previous):
        return previous
    return free_port(host)


def service_user(name: str) -> pwd.struct_passwd | None:
    """The unprivileged account a server runs as when we are root, or None when we are not.

    PostgreSQL refuses to run as root, and a broker has no reason to; both run as their
    Debian package's system account.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise BinaryMissingError(
            f"running as root, but the system user {name!r} does not exist to run the server; "
            "install the Debian package that creates it (scripts/setup does)"
        ) from None


def prepare_dir(path: Path, owner: pwd.struct_passwd | None, mode: int = 0o700) -> None:
    """Create ``path`` owned by ``owner`` and check that ``owner`` can reach it."""
    path.mkdir(parents=True, exist_ok=True)
    if owner is None:
        return
    os.chown(path, owner.pw_uid, owner.pw_gid)
    path.chmod(mode)
    for parent in path.resolve().parents:
        st = parent.stat()
        if not st.st_mode & 0o001:
            raise DataDirError(
                f"{parent} is not searchable by other users, so user {owner.pw_name!r} cannot "
                f"reach {path}; use a run directory outside it or chmod o+x {parent}"
            )


def chown_tree(path: Path, owner: pwd.struct_passwd | None) -> None:
    """Give every file under ``path`` to ``owner`` (no-op when not root)."""
    if owner is None:
        return
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    os.chown(path, owner.pw_uid, owner.pw_gid)


def pid_alive(pid: int, needle: str | None = None) -> bool:
    """Whether ``pid`` runs, and (if given) ``needle`` is part of its command line."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if needle is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    return needle.encode() in cmdline


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM ``pid``, wait for it to exit, and SIGKILL it after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_until(lambda: not pid_alive(pid, ""), timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid, ""), 5.0)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log file (empty when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
