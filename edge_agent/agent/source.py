"""Frame sources of the agent: a python-can bus in micro-batches, or a log file.

Both yield `FrameBatch` values. A bus source reads with ``recv`` until a batch holds
``max_frames`` frames or its first frame is ``max_latency_ms`` old, so a crash frame waits
at most that long before it is decoded; when the bus is quiet it yields an empty batch every
``idle_s`` so the agent can keep its timers. The only work per frame in Python is the
``recv`` call and one list append (from python-can's ``virtual`` bus, none: the waiting
frames are taken at once); the batch's columns are built by attribute passes in C and
NumPy. Where the interface filters in the driver or the kernel (SocketCAN and others that
implement python-can's ``_apply_filters``), the DBC's ids are set as filters, so frames the
catalogue cannot use never reach Python; interfaces that would filter in Python get none.
"""

from __future__ import annotations

import logging
import operator
import queue
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..frames import FrameBatch, FrameFlag
from . import _kernels

if TYPE_CHECKING:
    import can
    from can.typechecking import CanFilter

    from ..config import BatchingConfig, CanConfig

__all__ = [
    "BusSource",
    "FrameSource",
    "LogSource",
    "SourceError",
    "messages_to_batch",
    "open_source",
]

log = logging.getLogger(__name__)


class SourceError(Exception):
    """The configured bus or log cannot be opened (names which and why)."""


class FrameSource(Protocol):
    def batches(self) -> Iterator[FrameBatch]: ...
    def close(self) -> None: ...


_TIMESTAMP = operator.attrgetter("timestamp")
_ID = operator.attrgetter("arbitration_id")
_DATA = operator.attrgetter("data")
_DLC = operator.attrgetter("dlc")
_EXTENDED = operator.attrgetter("is_extended_id")
# Flags most frames do not have, each looked for before its column is made: (getter, bit).
_RARE_FLAGS = (
    (operator.attrgetter("is_fd"), 1),
    (operator.attrgetter("is_remote_frame"), 2),
    (operator.attrgetter("is_error_frame"), 3),
)
_FD_FLAGS = (
    (operator.attrgetter("bitrate_switch"), 4),
    (operator.attrgetter("error_state_indicator"), 5),
)


def messages_to_batch(messages: list[can.Message]) -> FrameBatch:
    """python-can messages as one `FrameBatch` (channels are not kept).

    Each column is one pass of a C-level attribute getter over the list (``map`` with
    ``operator.attrgetter`` into ``np.fromiter``), and the payloads are joined and copied
    into their rows by a numba kernel: no Python code runs per frame.
    """
    n = len(messages)
    if not n:
        return FrameBatch.empty()
    datas = list(map(_DATA, messages))
    lengths = np.fromiter(map(len, datas), np.int64, n)
    width = max(8, int(lengths.max()))
    flat = np.frombuffer(b"".join(datas), np.uint8)
    data = np.zeros((n, width), np.uint8)
    if len(flat) == n * width:  # every frame as long as the widest: one reshape
        data[:] = flat.reshape(n, width)
    elif len(flat):
        _kernels.scatter_payloads(flat, lengths, data)
    flags = np.fromiter(map(_EXTENDED, messages), np.bool_, n).view(np.uint8)
    for getter, bit in _RARE_FLAGS:
        if any(map(getter, messages)):
            flags |= np.fromiter(map(getter, messages), np.bool_, n).view(np.uint8) << np.uint8(bit)
    fd = (flags & FrameFlag.FD) != 0
    if fd.any():
        fd_messages = [m for m, is_fd in zip(messages, fd.tolist(), strict=True) if is_fd]
        for getter, bit in _FD_FLAGS:
            got = np.fromiter(map(getter, fd_messages), np.bool_, len(fd_messages))
            flags[fd] |= got.view(np.uint8) << bit
    remote = (flags & FrameFlag.REMOTE) != 0
    if remote.any():  # a remote frame's length is the dlc it requests
        lengths = np.where(remote, np.fromiter(map(_DLC, messages), np.int64, n), lengths)
    return FrameBatch(
        timestamps=np.fromiter(map(_TIMESTAMP, messages), np.float64, n),
        ids=np.fromiter(map(_ID, messages), np.uint32, n),
        flags=flags,
        lengths=lengths.astype(np.uint8),
        data=data,
        channels=np.full(n, -1, np.int16),
    )


# A stream of waiting frames closes its batch at most this many frames after the deadline.
_CLOCK_EVERY = 32


class BusSource:
    """Micro-batches from a python-can bus."""

    def __init__(
        self,
        bus: can.BusABC,
        batching: BatchingConfig,
        *,
        idle_s: float = 0.2,
        owns_bus: bool = True,
    ) -> None:
        self.bus = bus
        self.max_frames = batching.max_frames
        self.max_latency = batching.max_latency_ms / 1000.0
        self.idle_s = idle_s
        self._owns = owns_bus
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def batches(self) -> Iterator[FrameBatch]:
        recv = _reader(self.bus)
        take = _taker(self.bus, recv)
        max_frames, max_latency, idle = self.max_frames, self.max_latency, self.idle_s
        monotonic = time.monotonic
        while not self._stopped:
            messages = take(max_frames)
            if not messages:
                first = recv(idle)
                if first is None:
                    yield FrameBatch.empty()
                    continue
                messages = [first]
            deadline = monotonic() + max_latency
            # Take the frames that are waiting, without a timeout, looking at the clock
            # after each lot; wait (until the deadline) only when none is.
            while len(messages) < max_frames:
                waiting = take(max_frames - len(messages))
                if waiting:
                    messages += waiting
                    if monotonic() >= deadline:
                        break
                    continue
                remaining = deadline - monotonic()
                if remaining <= 0:
                    break
                message = recv(remaining)
                if message is None:
                    break
                messages.append(message)
            yield messages_to_batch(messages)

    def close(self) -> None:
        self._stopped = True
        if self._owns:
            self.bus.shutdown()


def _reader(bus: can.BusABC) -> Callable[[float], can.Message | None]:
    """The cheapest call that takes one message off ``bus``, waiting up to a timeout.

    python-can's ``recv`` wraps the backend's ``_recv_internal`` (the method every backend
    implements) with filtering in Python and a log call per message. With no filters left
    for Python to apply (none set, or the driver applies them), the agent calls the backend
    directly; it may return None before the timeout, which the batching loop allows.
    """
    import can

    overridden = type(bus).recv is not can.BusABC.recv
    python_filters = bool(getattr(bus, "_filters", None)) and not getattr(
        bus, "_is_filtered", False
    )
    if overridden or python_filters:
        return bus.recv
    internal = bus._recv_internal

    def read(timeout: float) -> can.Message | None:
        message, _ = internal(timeout)
        return message

    return read


def _taker(
    bus: can.BusABC, recv: Callable[[float], can.Message | None]
) -> Callable[[int], list[can.Message]]:
    """A call that takes up to ``limit`` frames already waiting on ``bus``, without waiting.

    python-can's ``virtual`` bus keeps its frames in a ``queue.Queue``: they are taken all
    at once under the queue's lock (what ``get`` does for one frame), those beyond the
    limit kept for the next call.  Other buses give up to _CLOCK_EVERY frames a call, one
    ``recv(0)`` each.
    """
    from can.interfaces.virtual import VirtualBus

    waiting = getattr(bus, "queue", None)
    if recv == bus.recv:

        def take_each(limit: int) -> list[can.Message]:
            messages = []
            for _ in range(min(limit, _CLOCK_EVERY)):
                message = recv(0.0)
                if message is None:
                    break
                messages.append(message)
            return messages

        return take_each
    internal = bus._recv_internal
    if type(bus) is not VirtualBus or not isinstance(waiting, queue.Queue):

        def take_each_internal(limit: int) -> list[can.Message]:
            # as take_each, calling the backend itself (see _reader)
            messages: list[can.Message] = []
            append = messages.append
            for _ in range(min(limit, _CLOCK_EVERY)):
                message = internal(0.0)[0]
                if message is None:
                    break
                append(message)
            return messages

        return take_each_internal

    source: queue.Queue[can.Message] = waiting
    left: list[can.Message] = []
    at = 0  # left[at:] are still to be handed out

    def take_all(limit: int) -> list[can.Message]:
        nonlocal left, at
        if at == len(left):
            with source.mutex:
                if not source.queue:
                    return []
                left, at = list(source.queue), 0
                source.queue.clear()
                source.not_full.notify_all()
        messages = left[at : at + limit]
        at += len(messages)
        return messages

    return take_all


class LogSource:
    """Batches from a log file, paced at ``speed`` times real time (0: as fast as read)."""

    def __init__(
        self,
        path: Any,
        *,
        speed: float = 1.0,
        chunk_frames: int = 4096,
    ) -> None:
        from ..logs import LogReader

        self.path = path
        self.speed = speed
        self._reader = LogReader(path, chunk_frames=chunk_frames)

    def batches(self) -> Iterator[FrameBatch]:
        start_wall: float | None = None
        start_log = 0.0
        for batch in self._reader:
            if not len(batch):
                continue
            if self.speed > 0:
                if start_wall is None:
                    start_wall, start_log = time.monotonic(), float(batch.timestamps[0])
                # pace by the batch's last frame, in slices so latency stays bounded
                yield from self._paced(batch, start_wall, start_log)
            else:
                yield batch
        bad = self._reader.report
        if bad.bad_lines:
            log.warning("%s", bad)

    def _paced(
        self, batch: FrameBatch, start_wall: float, start_log: float
    ) -> Iterator[FrameBatch]:
        times = batch.timestamps
        step = 0.02  # seconds of log time per slice
        i = 0
        n = len(batch)
        while i < n:
            j = int(np.searchsorted(times, times[i] + step, side="left"))
            j = max(j, i + 1)
            due = start_wall + (float(times[j - 1]) - start_log) / self.speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield batch.slice(i, j)
            i = j

    def close(self) -> None:
        self._reader.close()


def open_source(can_config: CanConfig, batching: BatchingConfig, database: Any) -> FrameSource:
    """The source the configuration names: a log file or a python-can bus."""
    if can_config.log is not None:
        try:
            return LogSource(
                can_config.log, speed=can_config.replay_speed, chunk_frames=batching.max_frames
            )
        except Exception as exc:
            raise SourceError(f"can.log: {exc}") from exc
    import can

    kwargs: dict[str, Any] = dict(can_config.extra)
    if can_config.bitrate is not None:
        kwargs["bitrate"] = can_config.bitrate
    if can_config.fd:
        kwargs["fd"] = True
    try:
        bus = can.Bus(
            interface=can_config.interface,
            channel=can_config.channel,
            receive_own_messages=can_config.receive_own_messages,
            **kwargs,
        )
    except (can.CanError, OSError, ValueError, ImportError) as exc:
        raise SourceError(
            f"can: cannot open {can_config.interface} channel {can_config.channel!r}: {exc}"
        ) from exc
    if can_config.kernel_filters:
        apply_kernel_filters(bus, database)
    return BusSource(bus, batching)


def apply_kernel_filters(bus: can.BusABC, database: Any) -> bool:
    """Set the DBC's ids as filters if the interface filters below Python; returns whether."""
    import can

    if type(bus)._apply_filters is can.BusABC._apply_filters:
        log.info("%s filters in Python only: no CAN id filters set", type(bus).__name__)
        return False
    if any(getattr(m, "protocol", None) == "j1939" for m in database.messages):
        # J1939 messages match by parameter group, whatever the source address: no filters
        log.info("the DBC has J1939 messages: no CAN id filters set")
        return False
    filters: list[CanFilter] = [
        {
            "can_id": m.frame_id,
            "can_mask": 0x1FFFFFFF if m.is_extended_frame else 0x7FF,
            "extended": bool(m.is_extended_frame),
        }
        for m in database.messages
    ]
    bus.set_filters(filters)
    log.info("CAN id filters set for %d messages of the DBC", len(filters))
    return True
