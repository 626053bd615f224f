"""Frame sources: python-can messages to batches, the virtual bus in micro-batches, logs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import can
import numpy as np
import pytest
from can.interfaces.virtual import VirtualBus

from edge_agent.agent import BusSource, LogSource, SourceError, messages_to_batch, open_source
from edge_agent.config import BatchingConfig, CanConfig
from edge_agent.frames import FrameBatch
from simulators import frame_messages, write_log
from simulators.socketpair import socketcan_pair

from ...can_messages import EVERY_KIND_FLAGS, EVERY_KIND_LENGTHS, every_kind
from .._drive import catalogue, urban_frames


def _same(a: FrameBatch, b: FrameBatch) -> None:
    assert np.array_equal(a.timestamps, b.timestamps)
    assert np.array_equal(a.ids, b.ids)
    assert np.array_equal(a.flags, b.flags)
    assert np.array_equal(a.lengths, b.lengths)
    width = min(a.data.shape[1], b.data.shape[1])
    assert np.array_equal(a.data[:, :width], b.data[:, :width])


def test_messages_to_batch_keeps_every_field() -> None:
    frames = urban_frames()
    part = FrameBatch(
        frames.timestamps[:5000],
        frames.ids[:5000],
        frames.flags[:5000],
        frames.lengths[:5000],
        frames.data[:5000],
        frames.channels[:5000],
    )
    _same(messages_to_batch(list(frame_messages(part))), part)


def test_messages_to_batch_flags_remote_error_and_fd() -> None:
    batch = messages_to_batch(every_kind())
    assert batch.flags.tolist() == EVERY_KIND_FLAGS
    assert batch.lengths.tolist() == EVERY_KIND_LENGTHS
    assert batch.timestamps.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert batch.data.shape == (5, 64)
    assert batch.payload(3) == bytes(range(64))
    assert batch.payload(0) == b"\x01\x02"
    assert messages_to_batch([]).timestamps.size == 0


def _until_idle(source: BusSource) -> list[FrameBatch]:
    """The source's batches up to its first empty one (nothing more waiting)."""
    batches = []
    for batch in source.batches():
        if not len(batch):
            break
        batches.append(batch)
    source.close()
    return batches


def test_bus_source_batches_by_size_and_latency() -> None:
    sender = can.Bus(interface="virtual", channel="source-test")
    receiver = can.Bus(interface="virtual", channel="source-test")
    source = BusSource(receiver, BatchingConfig(max_frames=100, max_latency_ms=20), idle_s=0.05)
    got: list[FrameBatch] = []

    def read() -> None:
        for batch in source.batches():
            got.append(batch)
            if sum(len(b) for b in got) >= 250 or len(got) > 200:
                source.stop()

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(250):
        sender.send(
            can.Message(
                arbitration_id=0x100 + i % 5, data=bytes([i % 256]) * 8, is_extended_id=False
            )
        )
    thread.join(10)
    source.close()
    sender.shutdown()
    frames = [b for b in got if len(b)]
    assert sum(len(b) for b in frames) == 250
    assert max(len(b) for b in frames) <= 100
    assert FrameBatch.concat(frames).data[:, 0].tolist() == [i % 256 for i in range(250)]


def test_bus_source_yields_empty_batches_when_idle() -> None:
    receiver = can.Bus(interface="virtual", channel="idle-test")
    source = BusSource(receiver, BatchingConfig(), idle_s=0.01)
    batches = source.batches()
    start = time.monotonic()
    assert len(next(batches)) == 0
    assert time.monotonic() - start < 5
    source.close()


def test_log_source_full_speed_and_paced(tmp_path: Path) -> None:
    frames = urban_frames()
    path = tmp_path / "drive.log"
    write_log(path, [frames])
    full = FrameBatch.concat(list(LogSource(path, speed=0).batches()))
    assert len(full) == len(frames)
    assert np.array_equal(full.ids, frames.ids)
    # At 60x, the 120 s drive takes about 2 s and comes in slices of at most 20 ms of log.
    start = time.monotonic()
    slices = list(LogSource(path, speed=60).batches())
    assert time.monotonic() - start >= 1.5
    assert sum(len(s) for s in slices) == len(frames)
    assert max(float(s.timestamps[-1] - s.timestamps[0]) for s in slices) <= 0.02 + 1e-9


def test_open_source_errors_name_the_interface() -> None:
    config = CanConfig(interface="socketcan", channel="can-does-not-exist")
    with pytest.raises(
        SourceError, match="can: cannot open socketcan channel 'can-does-not-exist'"
    ):
        open_source(config, BatchingConfig(), catalogue().database)


class _FilteringBus(can.BusABC):
    """A bus whose backend filters below Python, as SocketCAN does in the kernel."""

    def __init__(self) -> None:
        self.applied: list[can.typechecking.CanFilter] | None = None
        super().__init__(channel="f")

    def _apply_filters(self, filters: can.typechecking.CanFilters | None) -> None:
        self.applied = list(filters or [])

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        raise NotImplementedError


def test_kernel_filters_are_the_dbc_ids_where_the_backend_filters() -> None:
    from edge_agent.agent.source import apply_kernel_filters

    bus = _FilteringBus()
    database = catalogue().database
    assert apply_kernel_filters(bus, database)
    assert bus.applied is not None
    got = {(f["can_id"], f["can_mask"], f.get("extended")) for f in bus.applied}
    want = {
        (m.frame_id, 0x1FFFFFFF if m.is_extended_frame else 0x7FF, m.is_extended_frame)
        for m in database.messages
    }
    assert got == want
    bus.shutdown()
    # python-can's virtual bus would filter in Python, frame by frame: no filters there
    virtual = can.Bus(interface="virtual", channel="nofilter")
    assert not apply_kernel_filters(virtual, database)
    assert not virtual.filters
    virtual.shutdown()


class _SubclassedVirtualBus(VirtualBus):
    """Not python-can's own virtual bus: read one ``recv`` per frame, as SocketCAN is."""


@pytest.mark.parametrize("kind", ["virtual", "one recv per frame", "python filters"])
def test_waiting_frames_are_taken_in_order_across_batches(kind: str) -> None:
    """Frames already waiting (python-can's virtual bus hands them over all at once) are
    split into batches of at most max_frames, in order, none lost or taken twice; a bus
    filtering in Python is read through ``recv`` and its filters hold."""
    channel = f"take-{kind}"
    sender = can.Bus(interface="virtual", channel=channel)
    if kind == "one recv per frame":
        receiver: can.BusABC = _SubclassedVirtualBus(channel=channel)
    else:
        receiver = can.Bus(interface="virtual", channel=channel)
    if kind == "python filters":
        receiver.set_filters([{"can_id": 0x101, "can_mask": 0x7FF}])
    for i in range(1000):
        sender.send(can.Message(arbitration_id=0x100 + i % 2, data=i.to_bytes(2, "big") * 4))
    source = BusSource(receiver, BatchingConfig(max_frames=64, max_latency_ms=5), idle_s=0.01)
    batches = _until_idle(source)
    sender.shutdown()
    assert max(len(b) for b in batches) <= 64
    numbers = [int.from_bytes(row[:2].tobytes(), "big") for b in batches for row in b.data]
    assert numbers == (list(range(1, 1000, 2)) if kind == "python filters" else list(range(1000)))


def test_bus_source_reads_python_cans_socketcan_bus() -> None:
    """The SocketCAN path: python-can's own SocketCAN receive code (over a Unix socket
    pair), one receive call a frame. A drive's frames and the special kinds arrive in
    order, in batches of at most max_frames, with their flags, lengths and payloads, and
    the socket's times."""
    frames = urban_frames().slice(0, 3000)
    sending, receiving = socketcan_pair()
    messages = [*frame_messages(frames), *every_kind()]
    start = time.time()

    def send() -> None:
        for message in messages:
            sending.send(message, 1.0)  # waits while the socket's buffer is full

    thread = threading.Thread(target=send)
    thread.start()
    source = BusSource(receiving, BatchingConfig(max_frames=256, max_latency_ms=5), idle_s=0.5)
    batches: list[FrameBatch] = []
    for batch in source.batches():
        assert len(batch), "the source went idle before every frame arrived"
        batches.append(batch)
        if sum(len(b) for b in batches) >= len(messages):
            break
    thread.join(10)
    source.close()
    sending.shutdown()
    got = FrameBatch.concat(batches)
    assert max(len(b) for b in batches) <= 256
    assert len(got) == len(messages)
    drive = got.slice(0, len(frames))
    assert np.array_equal(drive.ids, frames.ids)
    assert np.array_equal(drive.flags, frames.flags)
    assert np.array_equal(drive.lengths, frames.lengths)
    assert np.array_equal(drive.data[:, :8], frames.data[:, :8])
    special = got.slice(len(frames), len(got))
    assert special.ids.tolist() == [m.arbitration_id for m in every_kind()]
    assert special.flags.tolist() == EVERY_KIND_FLAGS
    assert special.lengths.tolist() == EVERY_KIND_LENGTHS
    assert special.payload(3) == bytes(range(64))
    assert not special.data[1].any()  # a remote frame has no payload
    assert start <= got.timestamps[0] and np.all(np.diff(got.timestamps) >= 0)
    assert got.timestamps[-1] <= time.time()


def test_socketcan_bus_filters_in_python_without_kernel_filters() -> None:
    """A bus with no filters below Python gets none from the agent, and the filters a user
    sets on it hold (python-can's ``recv`` applies them)."""
    from edge_agent.agent.source import apply_kernel_filters

    sending, receiving = socketcan_pair()
    assert not apply_kernel_filters(receiving, catalogue().database)
    assert not receiving.filters
    receiving.set_filters([{"can_id": 0x101, "can_mask": 0x7FF, "extended": False}])
    for i in range(60):  # fewer than the socket takes unread
        sending.send(
            can.Message(arbitration_id=0x100 + i % 2, data=bytes([i]), is_extended_id=False)
        )
    source = BusSource(receiving, BatchingConfig(max_frames=64, max_latency_ms=5), idle_s=0.05)
    got = FrameBatch.concat(_until_idle(source))
    sending.shutdown()
    assert got.ids.tolist() == [0x101] * 30
    assert got.data[:, 0].tolist() == list(range(1, 60, 2))
