"""The edge agent's cost (CPU against a bare python-can receive loop, memory, start-up) and
its crash-to-subscriber latency, against a private Mosquitto.

Each measurement runs in a child process of its own (so its memory is its own): a sender
replays a simulated drive (the demo EV, WLTP-like cycle) at ``--rate`` frames/s for
``--seconds``; the receiver is either a bare ``bus.recv()`` loop or the whole agent (decode,
sampling, captures, crash detection, wire codec, durable outbox, MQTT). CPU is the process's
CPU time, less the sender's where it is a thread of that process, over the steady part of
the run; each run spawns every kind in turn, and the best of ``--runs`` of each counts. The
kinds (``--kinds``):

* ``bare``, ``agent``: python-can's ``virtual`` bus, which the agent takes all waiting frames
  from at once (one lock of its queue); the acceptance target is this pair's ratio;
* ``agent-recv``: the agent on a subclass of the ``virtual`` bus, read one receive call per
  frame (a worst case: no bus is read that way);
* ``bare-socketcan``, ``agent-socketcan``: python-can's own SocketCAN bus code over a Unix
  socket pair (`simulators.socketpair`), read one receive call per frame as on a gateway; the
  sender, a process of its own (on the other CPUs with ``--pin``), writes 1 ms bursts into
  the socket, which drops (and the sender counts) what a full buffer cannot take.

    python -m benchmarks.bench_agent [--rate 18000] [--seconds 60] [--runs 2] [--pin CPU]
                                     [--kinds bare,agent,...] [--raw]

With ``--pin`` each child (with a sender thread of its own) runs on one CPU: python-can's
``virtual`` bus hands the receiver message objects that the sender thread made, and when that
thread runs on the other core every attribute the agent reads is a transfer between the
cores' caches (the bare loop reads none). A kernel driver's frames become message objects on
the receiving thread.

Targets (issue 5): agent CPU <= 1.5x the bare loop; 18,000 frames/s sustained for 60 s;
peak resident memory <= 150 MB; start to first publish <= 2 s (warm numba cache); a crash
reaches a subscriber within 100 ms of the crash frame.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_CHILD_ENV = "CAN2CARE_BENCH_CHILD"
# The kinds of child, in the order each run spawns them.
_KINDS = ("bare", "agent", "agent-recv", "bare-socketcan", "agent-socketcan")
_CRASH_THRESHOLD = 40.0  # m/s^2: crash.acceleration_threshold of the example configuration


# -- the child ---------------------------------------------------------------------------


def _memory_mb(field: str) -> float:
    """A memory figure of this process from /proc: ``VmRSS`` (resident now) or ``VmHWM``
    (the peak of resident memory)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {field} in /proc/self/status")


def _thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _paced(log: Path, rate: float, seconds: float, burst: int) -> Any:
    """The frames of ``log`` as python-can messages, ``burst`` at a time, each lot when it is
    due at ``rate`` frames/s, until ``rate * seconds`` frames (the log repeats if short)."""
    total = int(rate * seconds)
    sent = 0
    start = time.monotonic()
    while sent < total:
        lots = 0
        for messages in _read_frames(log, max(burst, 1)):
            lots += 1
            messages = messages[: total - sent]
            yield messages
            sent += len(messages)
            if sent >= total:
                return
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if not lots:
            raise SystemExit(f"{log} holds no frames")


class _Sender(threading.Thread):
    """Replays a frame file onto python-can's virtual bus at a fixed rate, in 10 ms bursts,
    from a thread of the receiver's process (python-can's virtual bus lives in one process)."""

    def __init__(self, log: Path, rate: float, seconds: float, bus: Any) -> None:
        super().__init__(name="sender", daemon=True)
        self.log, self.rate, self.seconds, self.bus = log, rate, seconds, bus
        self.sent = 0
        self.started = threading.Event()
        self.cpu = 0.0  # the thread's CPU time when it ended
        self.elapsed = 0.0  # seconds from its first frame to its last
        self.dropped = 0
        self.crash_index: int | None = None  # the frame whose send time is recorded
        self.crash_sent_at: float | None = None

    def cpu_now(self) -> float:
        return _thread_cpu(self)

    def run(self) -> None:
        start = time.monotonic()
        self.started.set()
        try:
            for messages in _paced(self.log, self.rate, self.seconds, int(self.rate / 100)):
                mark = self.crash_index
                for k, message in enumerate(messages):
                    self.bus.send(message)
                    if mark is not None and self.sent + k == mark:
                        self.crash_sent_at = time.time()
                self.sent += len(messages)
        finally:
            self.cpu = time.thread_time()
            self.elapsed = time.monotonic() - start


class _SocketSender:
    """Replays a frame file into the sending end of a socket pair from a process of its own,
    as a CAN controller's frames reach a CAN socket whatever the reader does: 1 ms bursts,
    queued while the socket has room, dropped (counted) when it is full. Its CPU is not the
    receiver's."""

    def __init__(self, log: Path, rate: float, seconds: float, sending: Any, pin: int | None):
        self.log, self.rate, self.seconds, self.sending, self.pin = log, rate, seconds, sending, pin
        self.started = threading.Event()
        self.sent = self.dropped = 0
        self.cpu = self.elapsed = 0.0
        self.crash_index: int | None = None
        self.crash_sent_at: float | None = None
        self._process: subprocess.Popen[str] | None = None

    def cpu_now(self) -> float:
        return 0.0

    def start(self) -> None:
        fd = self.sending.socket.fileno()
        command = [sys.executable, "-m", "benchmarks.bench_agent", "--send-to", str(fd)]
        command += ["--log", str(self.log), "--rate", str(self.rate)]
        command += ["--seconds", str(self.seconds)]
        if self.pin is not None:
            command += ["--pin", str(self.pin)]
        self._process = subprocess.Popen(command, pass_fds=(fd,), stdout=subprocess.PIPE, text=True)
        self.started.set()

    def is_alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def join(self) -> None:
        assert self._process is not None
        out, _ = self._process.communicate()
        if self._process.returncode:
            raise RuntimeError(f"the socket sender failed ({self._process.returncode})")
        done = json.loads(out.strip().splitlines()[-1])
        self.sent, self.dropped, self.elapsed = done["sent"], done["dropped"], done["send_s"]


def _send_to_socket(args: argparse.Namespace) -> None:
    """The socket sender's process (see `_SocketSender`)."""
    import socket

    from can.interfaces.socketcan.socketcan import build_can_frame

    if args.pin is not None:  # the controller is not the reader's CPU: any other one
        others = set(range(os.cpu_count() or 1)) - {args.pin}
        os.sched_setaffinity(0, others or {args.pin})
    out = socket.socket(fileno=args.send_to)
    out.setblocking(False)
    sent = dropped = 0
    start = time.monotonic()
    for messages in _paced(args.log, args.rate, args.seconds, int(args.rate / 1000)):
        for message in messages:
            try:
                out.send(build_can_frame(message))
            except BlockingIOError:
                dropped += 1
        sent += len(messages)
    print(json.dumps({"sent": sent, "dropped": dropped, "send_s": time.monotonic() - start}))


# A frame in the sender's file: timestamp, id, flags (FrameFlag), length, then the payload.
# A plain record file keeps the child's memory its own: no log reader, no simulator.
_RECORD = struct.Struct("<dIBB")


def _write_frames(path: Path, batches: Any) -> None:
    with path.open("wb") as out:
        for batch in batches:
            parts = []
            for i in range(len(batch)):
                n = int(batch.lengths[i])
                parts.append(
                    _RECORD.pack(
                        float(batch.timestamps[i]), int(batch.ids[i]), int(batch.flags[i]), n
                    )
                )
                parts.append(batch.data[i, :n].tobytes())
            out.write(b"".join(parts))


def _read_frames(path: Path, burst: int) -> Any:
    import can

    with path.open("rb") as source:
        data = source.read(1 << 20)
        pos = 0
        messages = []
        while True:
            if len(data) - pos < _RECORD.size + 64:
                more = source.read(1 << 20)
                if more:
                    data = data[pos:] + more
                    pos = 0
            if pos + _RECORD.size > len(data):
                break
            ts, frame_id, flags, n = _RECORD.unpack_from(data, pos)
            pos += _RECORD.size
            messages.append(
                can.Message(
                    timestamp=ts,
                    arbitration_id=frame_id,
                    is_extended_id=bool(flags & 1),
                    is_fd=bool(flags & 2),
                    is_remote_frame=bool(flags & 4),
                    is_error_frame=bool(flags & 8),
                    dlc=n,
                    data=data[pos : pos + n],
                    check=False,
                )
            )
            pos += n
            if len(messages) == burst:
                yield messages
                messages = []
        if messages:
            yield messages


class _Monitor(threading.Thread):
    """Samples resident memory and the receive backlog every 0.2 s once sending has begun
    (the start-up's own peak is VmHWM's): the virtual bus's queue in frames, a Unix
    socket's in bytes (how much its sending end has in flight), as a share of its buffer."""

    def __init__(self, bus: Any, sending: Any, started: threading.Event) -> None:
        super().__init__(name="monitor", daemon=True)
        self.bus, self.sending = bus, sending
        self.started = started
        self.max_rss_mb = 0.0
        self.max_backlog = 0
        self.max_buffer_fill = 0.0

    def run(self) -> None:
        import fcntl
        import socket
        import termios

        self.started.wait()
        waiting = getattr(self.bus, "queue", None)
        out = getattr(self.sending, "socket", None)
        while True:
            time.sleep(0.2)
            self.max_rss_mb = max(self.max_rss_mb, _memory_mb("VmRSS"))
            if waiting is not None:
                self.max_backlog = max(self.max_backlog, waiting.qsize())
            elif out is not None:
                try:
                    queued = struct.unpack("i", fcntl.ioctl(out, termios.TIOCOUTQ, b"\0" * 4))[0]
                    size = out.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                except (OSError, ValueError):  # closed at the end of the run
                    return
                self.max_buffer_fill = max(self.max_buffer_fill, queued / size)


def _child(args: argparse.Namespace) -> None:
    import can

    spawn = float(os.environ[_CHILD_ENV])
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    channel = "bench"
    bus: can.BusABC
    sending: can.BusABC
    if args.child.endswith("-socketcan"):
        from simulators.socketpair import socketcan_pair

        sending, bus = socketcan_pair(channel)
    elif args.child == "agent-recv":
        from can.interfaces.virtual import VirtualBus

        class _OneByOne(VirtualBus):
            """Not python-can's own class: the agent reads it with one ``recv`` a frame
            instead of taking the waiting frames at once."""

        bus = _OneByOne(channel=channel)
        sending = can.Bus(interface="virtual", channel=channel)
    else:
        bus = can.Bus(interface="virtual", channel=channel)
        sending = can.Bus(interface="virtual", channel=channel)
    sender: _Sender | _SocketSender
    if args.child.endswith("-socketcan"):
        sender = _SocketSender(args.log, args.rate, args.seconds, sending, args.pin)
    else:
        sender = _Sender(args.log, args.rate, args.seconds, sending)
    sender.crash_index = args.crash_index
    monitor = _Monitor(bus, sending, sender.started)
    monitor.start()
    result: dict[str, Any] = {"mode": args.child}
    steady = max(min(1000, int(args.rate * args.seconds) // 10), 1)  # CPU counts from here
    if args.child.startswith("bare"):
        sender.start()
        received = 0
        window: tuple[float, float, int, float] | None = None
        while True:
            message = bus.recv(0.5)
            if message is None:
                if not sender.is_alive():
                    break
                continue
            received += 1
            if received == steady:
                window = (_process_cpu(), sender.cpu_now(), received, time.thread_time())
        sender.join()
        end = (_process_cpu(), sender.cpu, received, time.thread_time())
    else:
        from edge_agent.agent import Agent, BusSource
        from edge_agent.config import load_config

        overrides = json.loads((args.config.parent / "overrides.json").read_text())
        config = load_config(args.config, overrides=overrides)
        agent = Agent(config)
        agent.start()
        rss_after_start = _memory_mb("VmRSS")
        source = BusSource(bus, config.batching, owns_bus=False)
        sender.start()
        received = 0
        window = None
        first_batch_at = None
        micro_batches = 0
        for batch in source.batches():
            agent.process(batch)
            received += len(batch)
            micro_batches += len(batch) > 0
            if first_batch_at is None and len(batch):
                first_batch_at = time.time()
            if window is None and received >= steady:
                window = (_process_cpu(), sender.cpu_now(), received, time.thread_time())
            if not len(batch) and not sender.is_alive():
                break
        sender.join()
        end = (_process_cpu(), sender.cpu, received, time.thread_time())
        agent.close(drain_s=10)
        status = agent.status()
        result.update(
            batches=status.batches,
            samples_sent=status.samples_sent,
            samples_decoded=status.samples_decoded,
            outbox_left=status.outbox_records,
            first_batch_s=None if first_batch_at is None else first_batch_at - spawn,
            frames_per_micro_batch=received / max(micro_batches, 1),
            rss_after_start_mb=rss_after_start,
        )
    assert window is not None
    cpu = (end[0] - window[0]) - (end[1] - window[1])
    frames = end[2] - window[2]
    result.update(
        sent=sender.sent,
        send_s=sender.elapsed,
        dropped=sender.dropped,
        crash_sent_at=sender.crash_sent_at,
        received=received,
        cpu_s=cpu,
        us_per_frame=cpu / max(frames, 1) * 1e6,
        receiver_us_per_frame=(end[3] - window[3]) / max(frames, 1) * 1e6,
        peak_rss_mb=_memory_mb("VmHWM"),
        running_rss_mb=monitor.max_rss_mb,
        max_backlog=monitor.max_backlog,
        max_buffer_fill=monitor.max_buffer_fill,
    )
    bus.shutdown()
    sending.shutdown()
    print(json.dumps(result))


# -- the parent --------------------------------------------------------------------------


def _spawn(
    mode: str,
    log: Path,
    config: Path,
    rate: float,
    seconds: float,
    crash_index: int | None = None,
    pin: int | None = None,
) -> tuple[float, dict[str, Any]]:
    spawned = time.time()
    env = dict(os.environ, **{_CHILD_ENV: repr(spawned)})
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_agent",
        "--child",
        mode,
        "--log",
        str(log),
        "--config",
        str(config),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
    ]
    if crash_index is not None:
        command += ["--crash-index", str(crash_index)]
    if pin is not None:
        command += ["--pin", str(pin)]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return spawned, json.loads(out.stdout.strip().splitlines()[-1])


def _write_logs(tmp: Path) -> tuple[Path, Path, int]:
    """An hour of the demo EV's traffic, and 45 s with a crash; the crash frame's row."""
    import numpy as np

    from dbc import demo_catalogue
    from edge_agent.decoder import BatchDecoder
    from simulators import Scenario, TrafficGenerator, VehicleConfig, simulate

    database = demo_catalogue().database
    drive = simulate(VehicleConfig(cycle="wltp", duration=3600.0, seed=1))
    hour = tmp / "hour.frames"
    _write_frames(hour, TrafficGenerator(drive.trace, database).batches())
    crash = simulate(
        VehicleConfig(cycle="urban", duration=45.0, seed=3),
        [Scenario("crash", at=10.0, params={"min_speed_kmh": 20.0})],
    )
    frames = TrafficGenerator(crash.trace, database).all_frames()
    crash_log = tmp / "crash.frames"
    _write_frames(crash_log, [frames])
    decoded = BatchDecoder(database).decode(frames)
    # The crash frame: the first that shows the crash, an airbag deployed or an acceleration
    # beyond the agent's threshold (the pulse comes first: 10 ms cycle against 50 ms).
    airbag = decoded.signal("ACU_CrashStatus.AirbagDeployed")
    rows = [int(airbag.rows[np.flatnonzero(airbag.raw >= 1)[0]])]
    for name in ("ACU_Acceleration.LongitudinalAccel", "ACU_Acceleration.LateralAccel"):
        column = decoded.signal(name)
        over = np.flatnonzero(np.abs(column.values) > _CRASH_THRESHOLD)
        if len(over):
            rows.append(int(column.rows[over[0]]))
    return hour, crash_log, min(rows)


def _config(tmp: Path, port: int) -> Path:
    """The shipped example configuration, pointed at the bench's bus, broker and files."""
    from edge_agent.config import load_config

    example = Path(__file__).resolve().parent.parent / "deploy" / "agent.example.toml"
    text = example.read_text(encoding="utf-8")
    path = tmp / "agent.toml"
    path.write_text(text, encoding="utf-8")
    overrides = {
        "vehicle.id": "bench",
        "can.interface": "virtual",
        "can.channel": "bench",
        "mqtt.host": "127.0.0.1",
        "mqtt.port": port,
        "mqtt.username": None,
        "mqtt.tls": False,
        "outbox.path": str(tmp / "outbox.sqlite"),
        "status.file": str(tmp / "status.json"),
    }
    load_config(path, overrides=overrides)  # fails early if the example no longer loads
    (tmp / "overrides.json").write_text(json.dumps(overrides), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=18_000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--raw", action="store_true", help="also print each run's figures")
    parser.add_argument(
        "--pin",
        type=int,
        metavar="CPU",
        help="run each child (sender and receiver threads) on this one CPU, so that the "
        "receiver reads messages made on its own core, as it does from a kernel driver",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(_KINDS),
        help=f"the kinds of run, comma-separated (default: all: {','.join(_KINDS)})",
    )
    parser.add_argument("--child", choices=_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--crash-index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--send-to", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.kinds.split(",")) - set(_KINDS)
    if unknown:
        parser.error(f"--kinds: unknown {', '.join(sorted(unknown))}; known: {', '.join(_KINDS)}")
    if args.runs < 1:
        parser.error("--runs: at least 1")
    if args.prepare:
        print(_write_logs(args.prepare)[2])
        return
    if args.send_to is not None:
        _send_to_socket(args)
        return
    if args.child:
        _child(args)
        return
    _parent(args)


def _parent(args: argparse.Namespace) -> None:
    from can2care.devservices import Mosquitto
    from can2care.devservices._proc import free_port

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.edge_agent.agent._mqtt import Subscriber

    tmp = Path(tempfile.mkdtemp(prefix="can2care-bench-agent-"))
    tmp.chmod(0o755)
    broker = Mosquitto(tmp / "broker")
    port = free_port()
    broker.start(port)
    try:
        print("writing the drive logs ...", flush=True)
        # In a child: a parent that had loaded numba would share llvmlite's pages with the
        # agent, and shared pages cannot be given back (see edge_agent/agent/_memory.py).
        prepared = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_agent", "--prepare", str(tmp)],
            check=True,
            capture_output=True,
            text=True,
        )
        crash_row = int(prepared.stdout.split()[-1])
        hour, crash_log = tmp / "hour.frames", tmp / "crash.frames"
        config = _config(tmp, port)
        subscriber = Subscriber(port, ["v1/bench/telemetry", "v1/bench/events"])
        # A deployed agent's first start fills numba's on-disk cache; the targets are for the
        # starts after it.
        print("warming numba's cache ...", flush=True)
        _spawn("agent", hour, config, args.rate, 2.0, pin=args.pin)
        (tmp / "outbox.sqlite").unlink(missing_ok=True)
        kinds = [kind for kind in _KINDS if kind in args.kinds.split(",")]
        results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        starts: list[float] = []
        for run in range(args.runs):
            for kind in kinds:
                print(f"run {run + 1}/{args.runs}: {kind} ...", flush=True)
                (tmp / "outbox.sqlite").unlink(missing_ok=True)
                before = len(subscriber.on("v1/bench/telemetry"))
                spawned, result = _spawn(kind, hour, config, args.rate, args.seconds, pin=args.pin)
                results[kind].append(result)
                first = subscriber.on("v1/bench/telemetry")[before:]
                if kind.startswith("agent") and first:
                    starts.append(first[0].at - spawned)
        print("crash run (twice real time) ...", flush=True)
        events_before = len(subscriber.on("v1/bench/events"))
        _, crash = _spawn("agent", crash_log, config, 720.0, 22.0, crash_row, pin=args.pin)
        events = subscriber.wait_for("v1/bench/events", events_before + 1, 10)[events_before:]
        subscriber.close()
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    _report(args, results, starts, crash, events)


def _report(
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
    starts: list[float],
    crash: dict[str, Any],
    events: list[Any],
) -> None:
    best = {kind: min(runs, key=lambda r: r["us_per_frame"]) for kind, runs in results.items()}
    every = [r for runs in results.values() for r in runs]
    agents = [r for kind, runs in results.items() if kind.startswith("agent") for r in runs]

    def line(label: str, r: dict[str, Any]) -> str:
        return (
            f"  {label:<27}{r['us_per_frame']:.2f} us CPU/frame, "
            f"received {r['received']:,}/{r['sent']:,}, peak RSS {r['peak_rss_mb']:.0f} MB"
        )

    def ratio(agent: str, bare: str) -> str:
        return f"{best[agent]['us_per_frame'] / best[bare]['us_per_frame']:.2f}x"

    lines = [
        "",
        f"{args.rate:,.0f} frames/s for {args.seconds:g} s, best of {args.runs}"
        + ("" if args.pin is None else f", each child on CPU {args.pin}"),
    ]
    if {"bare", "agent", "agent-recv"} & set(best):
        lines.append("python-can's virtual bus:")
    for kind, label in (("bare", "bare python-can recv loop:"), ("agent", "whole agent:")):
        if kind in best:
            lines.append(line(label, best[kind]))
    if {"bare", "agent"} <= set(best):
        lines.append(f"  CPU ratio agent/bare: {ratio('agent', 'bare')} (target <= 1.5x)")
    if "agent-recv" in best:
        lines.append(line("agent, one recv per frame:", best["agent-recv"]))
        if "bare" in best:
            lines.append(
                f"  CPU ratio agent (one recv per frame)/bare: {ratio('agent-recv', 'bare')}"
            )
    if {"bare-socketcan", "agent-socketcan"} & set(best):
        lines.append("python-can's SocketCAN bus over a Unix socket pair (simulators.socketpair):")
    for kind, label in (
        ("bare-socketcan", "bare python-can recv loop:"),
        ("agent-socketcan", "whole agent:"),
    ):
        if kind in best:
            lines.append(line(label, best[kind]))
            fill = max(r["max_buffer_fill"] for r in results[kind])
            dropped = [r["dropped"] for r in results[kind]]
            lines.append(
                f"    socket buffer at most {fill:.0%} full; frames dropped by a full socket, "
                f"each run: {dropped}"
            )
    if {"bare-socketcan", "agent-socketcan"} <= set(best):
        lines.append(f"  CPU ratio agent/bare: {ratio('agent-socketcan', 'bare-socketcan')}")
    if agents:
        kind = next(k for k in ("agent", "agent-recv", "agent-socketcan") if k in best)
        a = best[kind]
        lines += [
            f"  {kind}, best run: {a['batches']} batches, {a['samples_sent']:,} of "
            f"{a['samples_decoded']:,} samples sent, {a['outbox_left']} records left in the outbox",
            f"  resident memory of the agent runs: at most "
            f"{max(r['running_rss_mb'] for r in agents):.0f} MB while running, "
            f"{max(r['peak_rss_mb'] for r in agents):.0f} MB peak including start-up"
            " (target <= 150 MB)",
        ]
    lines.append(
        "  all runs, us/frame: "
        + ", ".join(
            f"{kind} {[round(r['us_per_frame'], 2) for r in runs]}"
            for kind, runs in results.items()
        )
    )
    lines.append(
        f"  the sender sent {args.rate * args.seconds:,.0f} frames in at most "
        f"{max(r['send_s'] for r in every):.2f} s a run (planned: {args.seconds:g} s)"
    )
    virtual = [r for kind in ("bare", "agent") for r in results.get(kind, [])]
    if virtual:
        lines.append(
            "  virtual bus receive queue backlog: at most "
            f"{max(r['max_backlog'] for r in virtual):,} frames"
        )
    if starts:
        lines.append(
            f"  start to first telemetry at the subscriber: {min(starts):.2f} s best, "
            f"{max(starts):.2f} s worst (target <= 2 s)"
        )
    if events and crash.get("crash_sent_at"):
        latency = (events[0].at - crash["crash_sent_at"]) * 1000
        lines.append(
            f"  crash frame sent to event at the subscriber: {latency:.1f} ms (target <= 100 ms)"
        )
    else:
        lines.append("  crash: no event arrived")
    print("\n".join(lines))
    if args.raw:
        for r in [*(r for runs in results.values() for r in runs), crash]:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
