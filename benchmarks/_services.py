"""What the service benchmarks share: a Mosquitto with a fleet's logins, /proc readings."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

from can2care.devservices import _proc

__all__ = ["cpu_seconds", "raise_nofile", "rss_mb", "start_acl_broker"]


def raise_nofile() -> None:
    """Raise this process's open-files limit to the hard limit (thousands of sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid: int) -> float:
    """A process's CPU seconds (user + system) from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_acl_broker(root: Path, port: int) -> subprocess.Popen[bytes]:
    """A Mosquitto on ``port`` with ``root``'s ``passwords`` and ``acl`` (as provisioning
    writes them), no anonymous logins, no connection limit, logging to ``root``."""
    owner = _proc.service_user("mosquitto")
    lines = [
        "per_listener_settings false",
        f"listener {port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {root / 'passwords'}",
        f"acl_file {root / 'acl'}",
        "max_connections -1",
        "max_queued_messages 1000000",
        "max_inflight_messages 1000",
        "persistence false",
        f"log_dest file {root / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
    ]
    if owner is not None:
        lines.append("user mosquitto")
    (root / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    _proc.chown_tree(root, owner)
    binary = _proc.find_binary("mosquitto", hint="install mosquitto (scripts/setup does)")
    process = subprocess.Popen(
        [str(binary), "-c", str(root / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=raise_nofile,
    )
    if not _proc.wait_until(lambda: not _proc.port_is_free("127.0.0.1", port), 10):
        process.terminate()
        raise SystemExit("the broker did not start")
    return process
