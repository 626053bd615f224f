"""The rules worker: evaluates the care catalogue on every vehicle's new data (docs/rules.md).

::

    worker = RulesWorker(WorkerConfig(database_url=url, rule_files=(Path("my-rules.toml"),)))
    worker.run_once()     # every vehicle with new data: read, evaluate, store alerts and state
    worker.tick()         # clock rules (offline, owner care, service by time) for due vehicles
    worker.run(stop)      # both, woken by the ingest service's NOTIFY, until ``stop`` is set

Each vehicle is evaluated in one transaction that locks its `rule_state` row, applies the
alert changes (`rules.store.apply_changes`) and advances its cursor, so a crash or restart of
the worker repeats nothing and loses nothing, and several workers (``worker`` of ``workers``,
by a hash of the vehicle id) never evaluate one vehicle at once. Rules are split in two
engines: data rules (telemetry and events, on the vehicle's clock) and clock rules (only
presence and registry context, on the worker's clock at each tick). `reload` reads the rule
files again, with those stored through the API; a file with a problem keeps the rules that
run. A reload requested through the API (``rule_generation``, ``NOTIFY can2care_rules``) is
picked up within a round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from .engine import Engine, Observations
from .expr import compile_condition
from .feed import due_vehicles, lock_state, read_context, read_new, save_state
from .loader import RuleFileError, load_rules
from .model import RuleSet
from .store import apply_changes, escalate_due

__all__ = ["CONNECTIVITY", "RulesWorker", "WorkerConfig", "WorkerStats", "split_rules"]

log = logging.getLogger(__name__)

CONNECTIVITY = "Vehicle.Private.Connectivity.IsOnline"  # 1 online, 0 offline (from status)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    database_url: str
    rule_files: tuple[Path, ...] = ()
    builtin: bool = True
    worker: int = 0
    workers: int = 1
    settle_s: float = 1.0
    tick_s: float = 300.0
    escalate_every_s: float = 30.0
    vehicles_per_round: int = 200


@dataclass(slots=True)
class WorkerStats:
    vehicles: int = 0
    samples: int = 0
    changes: int = 0
    ticks: int = 0
    escalations: int = 0
    rounds: int = 0
    last_error: str | None = None
    by_rule: dict[str, int] = field(default_factory=dict)


def split_rules(rules: RuleSet) -> tuple[RuleSet, RuleSet]:
    """(data rules, clock rules): a clock rule reads no telemetry, only presence and context."""
    data, clock = [], []
    for rule in rules:
        reads: set[str] = set()
        for instance in rule.instances():
            for text in (instance.when, instance.clear):
                if text is not None:
                    reads |= compile_condition(text).signals
        if rule.event is None and reads <= {CONNECTIVITY}:
            clock.append(rule)
        else:
            data.append(rule)
    return RuleSet(tuple(data), rules.sources), RuleSet(tuple(clock), rules.sources)


class RulesWorker:
    """One worker process's share of the fleet."""

    def __init__(
        self, config: WorkerConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.config = config
        self._clock = clock or (lambda: datetime.now(UTC))
        self.stats = WorkerStats()
        self._conn: psycopg.Connection[Any] | None = None
        self._last_escalation = 0.0
        self._generation: int | None = None  # of the rule files stored through the API
        self._set_rules(load_rules(list(config.rule_files), builtin=config.builtin))

    def _set_rules(self, rules: RuleSet) -> None:
        data, clock = split_rules(rules)
        self.rules = rules
        self.data_engine = Engine(data)
        self.clock_engine = Engine(clock)
        log.info("rules: %d data rules, %d clock rules", len(data), len(clock))

    def reload(self) -> bool:
        """Read the rule files again, and those stored through the API (``rule_file``); on a
        problem, log it and keep the rules that run."""
        stored = self._stored_rules()
        try:
            rules = load_rules(
                list(self.config.rule_files), builtin=self.config.builtin, texts=stored
            )
        except RuleFileError as exc:
            log.error("rules not reloaded, the running ones stay:\n%s", exc)
            return False
        self._set_rules(rules)
        return True

    def _stored_rules(self) -> list[tuple[str, str]]:
        conn = self._connection()
        rows = conn.execute("SELECT name, text FROM rule_file ORDER BY name").fetchall()
        return [(f"rule_file:{name}", str(text)) for name, text in rows]

    def check_generation(self) -> bool:
        """Reload when the API asked for it (``rule_generation`` moved); whether it did."""
        row = self._connection().execute("SELECT generation FROM rule_generation").fetchone()
        generation = None if row is None else int(row[0])
        if generation == self._generation:
            return False
        first = self._generation is None
        self._generation = generation
        if first and generation == 0:
            return False  # nothing was ever stored: the rules loaded at start stand
        return self.reload()

    # -- the database -------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.config.database_url, autocommit=True)
            self._conn.execute("LISTEN can2care_data")
            self._conn.execute("LISTEN can2care_rules")  # the API's reload wakes the loop
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- one round -----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Evaluate every vehicle of this share with new data; the number of alert changes."""
        conn = self._connection()
        c = self.config
        changes = 0
        for vehicle, version in due_vehicles(
            conn, worker=c.worker, workers=c.workers, limit=c.vehicles_per_round
        ):
            changes += self._vehicle(conn, vehicle, version)
        self.stats.rounds += 1
        return changes

    def _vehicle(self, conn: psycopg.Connection[Any], vehicle: str, version: int) -> int:
        now = self._clock()
        with conn.transaction():
            cursor = lock_state(conn, vehicle)
            new = read_new(conn, cursor, self.data_engine.signals, settle_s=self.config.settle_s)
            context = read_context(conn, [vehicle], now.date()).get(vehicle, {})
            changes = self.data_engine.process(
                vehicle, cursor.data_state, new.observations,
                now_ms=int(now.timestamp() * 1000), context=context,
            )  # fmt: skip
            apply_changes(conn, changes)
            seen = cursor.seen_version if new.held_back else version
            save_state(conn, cursor, seen_version=seen, new=new)
        self._count(changes, new.samples)
        return len(changes)

    def tick(self, *, force: bool = False) -> int:
        """Evaluate the clock rules of this share's vehicles whose last tick is ``tick_s`` old."""
        conn = self._connection()
        now = self._clock()
        c = self.config
        rows = conn.execute(
            "SELECT v.vehicle_id, st.state FROM vehicle v"
            " LEFT JOIN rule_state r USING (vehicle_id)"
            " LEFT JOIN vehicle_status st USING (vehicle_id)"
            " WHERE mod(abs(hashtext(v.vehicle_id)::bigint), %s) = %s"
            "   AND (%s OR r.ticked_at IS NULL OR r.ticked_at <= %s - make_interval(secs => %s))"
            " ORDER BY r.ticked_at NULLS FIRST LIMIT %s",
            (c.workers, c.worker, force, now, c.tick_s, c.vehicles_per_round * 10),
        ).fetchall()
        changes = 0
        now_ms = int(now.timestamp() * 1000)
        contexts = read_context(conn, [str(v) for v, _s in rows], now.date())
        for vehicle, status in rows:
            signals = {}
            if status is not None:
                online = 1.0 if status == "online" else 0.0
                signals[CONNECTIVITY] = (np.array([now_ms]), np.array([online]))
            with conn.transaction():
                cursor = lock_state(conn, str(vehicle))
                found = self.clock_engine.process(
                    str(vehicle), cursor.clock_state, Observations(signals),
                    now_ms=now_ms, context=contexts.get(str(vehicle), {}),
                )  # fmt: skip
                apply_changes(conn, found)
                save_state(conn, cursor, ticked_at=now)
            changes += len(found)
            self._count(found, 0)
        self.stats.ticks += 1
        return changes

    def escalate(self) -> int:
        """Escalate open alerts not acknowledged within their rule's time."""
        escalations = self.rules.escalations
        if not escalations:
            return 0
        done = escalate_due(self._connection(), self._clock(), escalations)
        self.stats.escalations += len(done)
        return len(done)

    def _count(self, changes: list[Any], samples: int) -> None:
        stats = self.stats
        stats.vehicles += 1
        stats.samples += samples
        stats.changes += len(changes)
        for change in changes:
            stats.by_rule[change.rule_id] = stats.by_rule.get(change.rule_id, 0) + 1

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, reload: threading.Event | None = None) -> None:
        """Rounds until ``stop``: at each NOTIFY from the ingest service, else every second."""
        next_tick = 0.0
        while not stop.is_set():
            try:
                if reload is not None and reload.is_set():
                    reload.clear()
                    self.reload()
                self.check_generation()
                while self.run_once():
                    pass
                if time.monotonic() >= next_tick:
                    self.tick()
                    next_tick = time.monotonic() + min(self.config.tick_s, 60.0)
                if time.monotonic() - self._last_escalation >= self.config.escalate_every_s:
                    self.escalate()
                    self._last_escalation = time.monotonic()
                self.stats.last_error = None
                self._wait(min(self.config.settle_s, 1.0))
            except psycopg.OperationalError as exc:
                self.stats.last_error = str(exc).strip()
                log.warning("database unavailable (%s); retrying", self.stats.last_error)
                self.close()
                stop.wait(2.0)
        self.close()

    def _wait(self, timeout: float) -> None:
        """Sleep until the ingest service notifies new data, or ``timeout``.

        A notification that arrived while the round ran its queries is already read off the
        socket (psycopg keeps it in the connection's backlog); ``notifies`` returns it at once,
        where waiting on the socket would sleep the whole timeout with data waiting.
        """
        conn = self._connection()
        for _ in conn.notifies(timeout=timeout, stop_after=1):
            pass
        for _ in conn.notifies(timeout=0):
            pass
