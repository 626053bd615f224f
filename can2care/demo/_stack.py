"""The cloud side of the demo as the deployed commands, each in a process of its own.

``can2care ingest``, ``can2care rules run`` (which delivers webhooks too) and ``can2care api``
run as children of the demo with their output in ``<run dir>/demo/<name>.log``. With
``scale`` N, N ingest processes share one MQTT group (each its own client id; its session ends
with the process) and N rules workers share the fleet (``--worker k --workers N``), as
docs/scale-out.md plans. Each child starts in a process session of its own, so a Ctrl-C at
the terminal reaches only the demo, which stops them in order (API, rules, ingest) with
SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Stack", "StackError"]


class StackError(RuntimeError):
    """A service of the demo did not start or stopped on its own."""


class Stack:
    def __init__(
        self,
        log_dir: Path,
        database_url: str,
        mqtt: tuple[str, int],
        api_port: int,
        *,
        scale: int = 1,
    ) -> None:
        self.log_dir = log_dir
        self.database_url = database_url
        self.mqtt = mqtt
        self.api_port = api_port
        self.scale = scale
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def _names(self, kind: str) -> list[str]:
        return [kind] if self.scale == 1 else [f"{kind}-{k}" for k in range(1, self.scale + 1)]

    def start(self, timeout: float = 90.0) -> None:
        host, port = self.mqtt
        commands: dict[str, list[str]] = {}
        for name in self._names("ingest"):
            commands[name] = [
                "ingest", "--database", self.database_url, "--broker", f"{host}:{port}",
                "--group", "can2care-demo", "--client-id", f"can2care-demo-{name}",
                "--http-port", "0",
            ]  # fmt: skip
        for k, name in enumerate(self._names("rules")):
            commands[name] = [
                "rules", "run", "--database", self.database_url,
                "--worker", str(k), "--workers", str(self.scale),
            ]  # fmt: skip
        commands["api"] = ["api", "--database", self.database_url, "--port", str(self.api_port)]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CAN2CARE_DATABASE_URL=self.database_url)
        # Each run has a new database, so an ingest session need not outlive its process; and
        # one that did would stay in the group after a run with a larger --scale: Mosquitto
        # queues a share of the group's messages for an offline member, which this run would
        # never store.
        ingest_env = dict(env, CAN2CARE_INGEST__MQTT__SESSION_EXPIRY_S="0")
        for name, args in commands.items():
            with (self.log_dir / f"{name}.log").open("wb") as out:
                self.children[name] = subprocess.Popen(
                    [sys.executable, "-m", "can2care", *args],
                    env=ingest_env if args[0] == "ingest" else env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        deadline = time.monotonic() + timeout
        for name in (*self._names("ingest"), *self._names("rules")):  # they say when they listen
            while "Ctrl-C stops" not in self.log(name):
                self._check(deadline, name)
                time.sleep(0.1)
        while not _answers("127.0.0.1", self.api_port):
            self._check(deadline, "api")
            time.sleep(0.1)

    def log(self, name: str) -> str:
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _check(self, deadline: float, name: str) -> None:
        if time.monotonic() > deadline:
            raise StackError(f"{name} did not start in time; see {self.log_dir / name}.log")
        self.check()

    def check(self) -> None:
        """`StackError` if a service has stopped."""
        for name, child in self.children.items():
            if child.poll() is not None:
                tail = self.log(name)[-2000:]
                raise StackError(f"{name} stopped (exit {child.returncode}):\n{tail}")

    def stop(self, grace_s: float = 20.0) -> None:
        for name in ("api", *self._names("rules"), *self._names("ingest")):
            child = self.children.pop(name, None)
            if child is None or child.poll() is not None:
                continue
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(grace_s)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
