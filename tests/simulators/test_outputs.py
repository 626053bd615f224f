"""Log files (candump, ASC, BLF), the virtual bus, replay and the CLI."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import can
import numpy as np
import pytest

from can2care.cli import main
from dbc import demo_catalogue
from edge_agent.frames import FrameBatch
from edge_agent.logs import read_log
from simulators import (
    TrafficGenerator,
    VehicleConfig,
    format_candump,
    read_labels,
    replay_log,
    send_frames,
    simulate,
    write_log,
)


def _frames(duration: float = 5.0) -> FrameBatch:
    drive = simulate(VehicleConfig(duration=duration, seed=3))
    return TrafficGenerator(drive.trace, demo_catalogue().database).all_frames()


def _same(a: FrameBatch, b: FrameBatch, *, atol: float = 1e-6, relative: bool = False) -> None:
    assert len(a) == len(b)
    ta, tb = a.timestamps, b.timestamps
    if relative:  # ASC keeps times relative to the start of the measurement
        ta, tb = ta - ta[0], tb - tb[0]
    assert np.allclose(ta, tb, atol=atol, rtol=0)
    assert np.array_equal(a.ids, b.ids)
    assert np.array_equal(a.lengths, b.lengths)
    assert all(a.payload(i) == b.payload(i) for i in range(len(a)))
    assert np.array_equal(a.flags & 0x13, b.flags & 0x13)  # extended, FD, BRS


def test_candump_is_read_back_by_our_reader_and_python_can(tmp_path: Path) -> None:
    frames = _frames()
    path = tmp_path / "drive.log"
    assert write_log(path, [frames]) == len(frames)
    _same(read_log(path)[0], frames)
    with can.LogReader(str(path)) as reader:
        messages = list(reader)
    assert len(messages) == len(frames)
    for i in (0, 1, len(frames) // 2, len(frames) - 1):
        m = messages[i]
        assert (m.arbitration_id, bytes(m.data)) == (int(frames.ids[i]), frames.payload(i))
        assert m.timestamp == pytest.approx(float(frames.timestamps[i]), abs=1e-6)
    assert any(m.is_fd for m in messages) and any(m.is_extended_id for m in messages)


def test_candump_lines_look_like_candump() -> None:
    batch = FrameBatch.from_rows(
        [
            (1.5, 0xA0, 0, b"\x01\xab"),
            (2.25, 0x18FF1125, 1, bytes(8)),
            (3.0, 0x2B0, 0x12, bytes(12)),
        ],
        channels=[0, 0, 0],
        channel_names=("vcan0",),
    )
    assert format_candump(batch).decode().splitlines() == [
        "(1.500000) vcan0 0A0#01AB",
        "(2.250000) vcan0 18FF1125#0000000000000000",
        "(3.000000) vcan0 2B0##1" + "00" * 12,
    ]


@pytest.mark.parametrize("suffix", [".asc", ".blf", ".log.gz"])
def test_other_log_formats(tmp_path: Path, suffix: str) -> None:
    frames = _frames(2.0)
    path = tmp_path / f"drive{suffix}"
    write_log(path, [frames])
    back = read_log(path)[0]
    _same(back, frames, atol=1e-5, relative=suffix == ".asc")


def _receive(channel: str, count: int, out: list[can.Message], ready: threading.Event) -> None:
    with can.Bus(interface="virtual", channel=channel) as bus:
        ready.set()
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            message = bus.recv(timeout=0.5)
            if message is not None:
                out.append(message)


def test_drive_onto_a_virtual_bus() -> None:
    frames = _frames(3.0)
    channel = f"sim-{uuid.uuid4().hex}"
    received: list[can.Message] = []
    ready = threading.Event()
    listener = threading.Thread(target=_receive, args=(channel, len(frames), received, ready))
    listener.start()
    ready.wait(10)
    with can.Bus(interface="virtual", channel=channel) as bus:
        stats = send_frames(bus, [frames], speed=50.0)
    listener.join(40)
    assert stats.frames == len(frames) == len(received)
    assert [m.arbitration_id for m in received] == [int(i) for i in frames.ids]
    assert all(bytes(m.data) == frames.payload(i) for i, m in enumerate(received))


def test_replay_keeps_order_and_timing(tmp_path: Path) -> None:
    rows = [(100.0 + 0.2 * i, 0x100 + i, 0, bytes([i])) for i in range(10)]
    path = tmp_path / "small.log"
    path.write_bytes(
        format_candump(FrameBatch.from_rows(rows, channels=[0] * 10, channel_names=("can0",)))
    )
    channel = f"replay-{uuid.uuid4().hex}"
    received: list[can.Message] = []
    ready = threading.Event()
    listener = threading.Thread(target=_receive, args=(channel, 10, received, ready))
    listener.start()
    ready.wait(10)
    fractions: list[float] = []
    with can.Bus(interface="virtual", channel=channel) as bus:
        stats = replay_log(path, bus, speed=4.0, progress=fractions.append)
    listener.join(40)
    assert [m.arbitration_id for m in received] == [0x100 + i for i in range(10)]
    gaps = np.diff([m.timestamp for m in received])
    assert np.all(gaps > 0.02) and np.median(gaps) == pytest.approx(0.05, abs=0.03)
    assert stats.frames == 10 and stats.log_seconds == pytest.approx(1.8)
    assert fractions and fractions[-1] == pytest.approx(1.0)


def test_cli_drive_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = tmp_path / "s.toml"
    scenarios.write_text(
        '[drive]\nduration = "90s"\nseed = 2\n\n[[scenario]]\nkind = "gnss_dropout"\nat = 30\n'
    )
    log, labels = tmp_path / "d.log", tmp_path / "d.jsonl"
    code = main(
        [
            "sim",
            "drive",
            "--scenarios",
            str(scenarios),
            "--vin",
            "VIN123",
            "-o",
            str(log),
            "--labels",
            str(labels),
        ]
    )
    assert code == 0
    (label,) = read_labels(labels)
    assert (label.vehicle, label.kind, label.label, label.offset_s) == (
        "VIN123",
        "gnss_dropout",
        "negative",
        30.0,
    )
    assert len(read_log(log)[0]) > 30_000
    code = main(
        [
            "sim",
            "replay",
            str(log),
            "--interface",
            "virtual",
            "--channel",
            f"cli-{uuid.uuid4().hex}",
            "--full-speed",
            "--no-progress",
        ]
    )
    assert code == 0 and "frames replayed" in capsys.readouterr().out
    scenarios.write_text('[[scenario]]\nkind = "crash"\nat = "soon"\n')
    assert main(["sim", "drive", "--scenarios", str(scenarios), "-o", str(log)]) == 1
    assert "s.toml:3: scenario[1].at:" in capsys.readouterr().err
