"""``run_demo``: the whole chain for a simulated fleet, from CAN frames to the care team."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rules.scoring import Explained
    from simulators.labels import Label

__all__ = ["DemoConfig", "DemoError", "DemoResult", "run_demo"]

log = logging.getLogger(__name__)

DATABASE = "can2care_demo"
_AGENT_S_PER_DRIVE_HOUR = 2.2  # one core's time to run an hour of drive through an agent
_STALL_S = 180.0  # give up when nothing moves for this long


class DemoError(RuntimeError):
    """The demo could not run (a service did not start, the chain stalled)."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    vehicles: int = 50
    duration_s: float = 3600.0  # the fleet's window of drive time
    speed: float = 60.0  # drive seconds per wall-clock second
    seed: int = 0
    keep_running: bool = True  # serve the API until interrupted after the table
    run_dir: Path | None = None
    api_port: int = 8080  # another free port if taken
    jobs: int = 0  # agent processes, 0: one per core
    scale: int = 1  # ingest processes and rules workers side by side
    progress_every_s: float = 5.0


@dataclass(frozen=True, slots=True)
class DemoResult:
    problems: tuple[str, ...]  # empty: every rescue event raised, none on a hard negative
    table: str
    summary: tuple[str, ...]
    api_url: str  # where the API served during the run (and after, with keep_running)
    seconds: float
    alerts: tuple[Explained, ...] = ()  # every alert raised, with the label it matched
    labels: tuple[Label, ...] = ()  # the fleet's ground truth


def run_demo(
    config: DemoConfig,
    say: Callable[[str], None],
    *,
    serving: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the demo, reporting through ``say``. With ``keep_running`` the API's URL and a
    token follow the table and the API keeps serving until KeyboardInterrupt (``serving`` is
    called once they are shown); every process the demo started is stopped on the way out,
    also when interrupted."""
    from can2care.devservices import ServiceManager

    started = time.monotonic()
    manager = ServiceManager(config.run_dir)
    already = manager.running() is not None
    services = manager.start()
    say(
        f"services    mosquitto {services.mqtt.url}, postgres on port {services.postgres.port}"
        + (" (already running)" if already else "")
    )
    try:
        return _with_services(config, manager, services, say, serving, started)
    finally:
        if not already:
            manager.stop()


def _with_services(
    config: DemoConfig,
    manager: Any,
    services: Any,
    say: Callable[[str], None],
    serving: Callable[[DemoResult], None] | None,
    started: float,
) -> DemoResult:
    import psycopg

    from can2care.devservices import _proc
    from cloud_ingest.storage import migrate

    from ._prepare import EXAMPLE_CONFIG, FleetPlan
    from ._retained import clear_demo_statuses
    from ._stack import Stack, StackError

    if not EXAMPLE_CONFIG.is_file():
        raise DemoError(f"{EXAMPLE_CONFIG} is missing: run the demo from a clone")
    port = services.postgres.port
    manager.postgres.psql(port, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    manager.postgres.ensure_database(port, DATABASE)
    url = services.postgres.dsn(DATABASE)
    # The fleet is registered and the earlier fleets' statuses are gone before the ingest
    # service subscribes: every message it receives is this run's (or not a demo vehicle's).
    probe = FleetPlan(config.vehicles, config.seed, config.duration_s, 0.0)  # ids, not times
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        token = _register(conn, probe.drives(), config.keep_running)
    host = "127.0.0.1" if services.mqtt.host == "localhost" else services.mqtt.host
    try:
        cleared = clear_demo_statuses(host, services.mqtt.port)
    except (OSError, TimeoutError) as exc:
        raise DemoError(f"the broker's retained statuses could not be cleared: {exc}") from exc
    if cleared:
        say(f"broker      cleared the retained statuses of {cleared} earlier demo vehicles")
    api_port = config.api_port
    if api_port == 0 or not _proc.port_is_free("127.0.0.1", api_port):
        api_port = _proc.free_port()
    run_dir = manager.run_dir
    stack = Stack(
        run_dir / "demo", url, (services.mqtt.host, services.mqtt.port), api_port,
        scale=config.scale,
    )  # fmt: skip
    try:
        say(
            f"database    {DATABASE} (new), {config.vehicles} vehicles registered; "
            "starting ingest, rules and the API ..."
        )
        stack.start()
        jobs = config.jobs or max(1, os.cpu_count() or 1)
        plan = _plan(config, probe, jobs)
        return _run_fleet(config, plan, jobs, stack, url, token, say, serving, started)
    except StackError as exc:
        raise DemoError(str(exc)) from exc
    finally:
        stack.stop()


def _register(conn: Any, drives: Any, keep_running: bool) -> str | None:
    """Register the fleet's vehicles; the API's token when it keeps running."""
    from cloud_ingest.api import create_token
    from cloud_ingest.storage import Vehicle, register_vehicles

    register_vehicles(
        conn,
        [
            Vehicle(d.vehicle_id, vin=d.vehicle_id, region="demo",
                    propulsion="electric" if d.config.variant == "ev" else "combustion")
            for d in drives
        ],
    )  # fmt: skip
    if not keep_running:
        return None
    token, _info = create_token(conn, "demo", "supervisor", created_by="can2care demo")
    return token


def _plan(config: DemoConfig, probe: Any, jobs: int) -> Any:
    """The fleet's plan, its window ending when its last message is due (``probe``: the same
    fleet without times, for its drives' durations)."""
    from ._prepare import FleetPlan

    hours = sum(d.config.duration for d in probe.drives()) / 3600
    estimate = hours * _AGENT_S_PER_DRIVE_HOUR / jobs + 5.0
    # the window ends when its last message is due, so no data is ever from the future
    end = time.time() + estimate + config.duration_s / config.speed
    return FleetPlan(config.vehicles, config.seed, config.duration_s, round(end, 3))


def _run_fleet(
    config: DemoConfig,
    plan: Any,
    jobs: int,
    stack: Any,
    url: str,
    token: str | None,
    say: Callable[[str], None],
    serving: Callable[[DemoResult], None] | None,
    started: float,
) -> DemoResult:
    from simulators.demo_fleet import demo_kind

    from ._prepare import prepare_fleet
    from ._publish import FleetPublisher

    drives = plan.drives()
    kinds: dict[str, int] = {}
    for d in drives:
        kinds[demo_kind(d)] = kinds.get(demo_kind(d), 0) + 1
    evs = sum(d.config.variant == "ev" for d in drives)
    hours = sum(d.config.duration for d in drives) / 3600
    say(
        f"fleet       {len(drives)} vehicles ({evs} EV, {len(drives) - evs} combustion), "
        f"{hours:,.1f} h of driving and parking in a {config.duration_s / 3600:g} h window"
    )
    say("scenarios   " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    t0 = time.monotonic()
    last = [t0]

    def prepared(n: int) -> None:
        if time.monotonic() - last[0] >= config.progress_every_s or n == len(drives):
            last[0] = time.monotonic()
            say(f"agents      {n}/{len(drives)} vehicles' drives through their edge agents")

    fleet = prepare_fleet(plan, jobs, prepared)
    frames = sum(p.frames for p in fleet)
    say(
        f"agents      {frames:,} CAN frames in {time.monotonic() - t0:,.1f} s "
        f"({jobs} processes), {sum(len(p.records) for p in fleet):,} messages to publish"
    )
    window_start = plan.end_time - plan.duration_s
    # wait if the agents were quicker than estimated: the window's end must not be ahead
    wait = (plan.end_time - plan.duration_s / config.speed) - time.time()
    if wait > 0:
        time.sleep(wait)
    publisher = FleetPublisher(
        fleet, "127.0.0.1" if stack.mqtt[0] == "localhost" else stack.mqtt[0], stack.mqtt[1],
        speed=config.speed, window_start=window_start,
    )  # fmt: skip
    say(
        f"publishing  at {config.speed:g}x: {config.duration_s / config.speed / 60:,.1f} min "
        "of wall-clock time"
    )
    try:
        try:
            publisher.start()
        except (OSError, TimeoutError) as exc:
            raise DemoError(f"the fleet could not connect to the broker: {exc}") from exc
        _follow(publisher, stack, url, config, say)
        result = _report(fleet, url, stack, started, say)
    finally:
        publisher.close()
    if config.keep_running and token is not None:
        say("")
        say(f"API         {result.api_url}/docs   (bearer token, shown only now: {token})")
        say(f"            curl -H 'Authorization: Bearer {token}' {result.api_url}/v1/alerts")
        if serving is not None:
            serving(result)
        _serve_until_interrupted(stack)
    return result


def _follow(
    publisher: Any, stack: Any, url: str, config: DemoConfig, say: Callable[[str], None]
) -> None:
    import psycopg

    from ._report import read_progress

    settled = 0
    moved = time.monotonic()
    before: tuple[int, ...] = ()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            time.sleep(config.progress_every_s if not publisher.stats().done else 1.0)
            stack.check()
            s = publisher.stats()
            p = read_progress(conn)
            clock = datetime.fromtimestamp(
                min(s.drive_clock, publisher.window_start + config.duration_s)
            )
            say(
                f"  {clock:%H:%M:%S}  published {s.published:,}/{s.messages:,}, stored "
                f"{p.batches:,} batches + {p.events} events ({p.samples:,} samples), "
                f"alerts {p.alerts} ({p.rescue_alerts} rescue), rules behind on "
                f"{p.vehicles_pending} vehicles"
            )
            now = (s.published, s.acked, p.batches, p.events, p.alerts, p.vehicles_pending)
            if now != before:
                before, moved = now, time.monotonic()
            elif time.monotonic() - moved > _STALL_S:
                raise DemoError(f"nothing moved for {_STALL_S:.0f} s; logs in {stack.log_dir}")
            stored = p.batches + p.events + p.dead_letters
            if s.done and stored >= s.messages and p.vehicles_pending == 0:
                settled += 1
                if settled >= 3:  # the rules worker settles new data for a second
                    return
            else:
                settled = 0


def _report(
    fleet: Any, url: str, stack: Any, started: float, say: Callable[[str], None]
) -> DemoResult:
    import psycopg

    from rules.scoring import explain_alerts, score_alerts

    from ._report import alert_table, read_alerts, read_progress, summary

    with psycopg.connect(url, autocommit=True) as conn:
        alerts = read_alerts(conn)
        progress = read_progress(conn)
    labels = [label for p in fleet for label in p.labels]
    changes = [a.change for a in alerts]
    explained = explain_alerts(labels, changes)
    score = score_alerts(labels, changes)
    ids = {id(a.change): a.alert_id for a in alerts}
    table = alert_table(explained, ids)
    lines = summary(score, alerts, progress, vehicles=len(fleet))
    problems = tuple(score.acceptance())
    seconds = time.monotonic() - started
    api_url = f"http://127.0.0.1:{stack.api_port}"
    say("")
    say(f"What the care team received ({len(alerts)} alerts):")
    say("")
    say(table)
    say("")
    for line in lines:
        say(line)
    say(f"took        {seconds:,.0f} s")
    if problems:
        say("NOT as expected: " + "; ".join(problems))
    else:
        say("as expected: every rescue event raised one alert, none on a hard negative")
    return DemoResult(
        problems, table, tuple(lines), api_url, seconds, tuple(explained), tuple(labels)
    )


def _serve_until_interrupted(stack: Any) -> None:
    forever = threading.Event()
    while not forever.wait(1.0):
        stack.check()
