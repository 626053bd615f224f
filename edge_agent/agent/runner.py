"""The agent: frames in, telemetry, captures and urgent events out through the outbox.

One thread runs the pipeline (`Agent.process` per batch): decode (numba), sample (numba),
crash detection and captures on the watched signals, and, every ``batch_interval_s`` of data
or wall time, a telemetry batch encoded with the wire codec and put in the durable outbox. A
crash event is put in the outbox and the MQTT link is woken at once, without waiting for the
batch. The MQTT link (`edge_agent.mqtt.MqttLink`) drains the outbox from its own thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..decoder import BatchDecoder
from ..events import CrashDetector
from ..frames import FrameBatch
from ..mqtt import MqttLink
from ..outbox import Outbox, OutboxFullError, OutboxStats, Priority
from ..sampling import CaptureManager, Sampler
from ..wire import CrashEvent, TelemetryBatch, WireSchema, encode_event, encode_telemetry
from . import _kernels
from ._memory import freeze_start_up, release_compiler_pages, thaw_start_up
from .checks import check_catalogue
from .sequence import SequenceStore
from .source import FrameSource, open_source

if TYPE_CHECKING:
    from dbc import Catalogue

    from ..config import AgentConfig

__all__ = ["Agent", "AgentStatus", "write_status_file"]

log = logging.getLogger(__name__)

# The first telemetry batch after start goes out after this much data, so the cloud sees
# the vehicle's state at once rather than after a whole batch interval.
FIRST_BATCH_S = 0.25


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the agent has done since it started; the status topic and file carry it."""

    vehicle_id: str
    catalogue_id: str
    time_ms: int
    uptime_s: float
    frames_in: int
    frames_decoded: int
    frames_unknown: int
    frames_skipped: int
    frames_truncated: int
    samples_decoded: int
    samples_sent: int
    samples_clamped: int
    batches: int
    events: int
    captures: int
    outbox_records: int
    outbox_bytes: int
    outbox_evicted: int
    outbox_refused: int  # records the outbox could not take (full of more urgent ones)
    connected: bool
    last_publish_ms: int | None
    last_error: str | None


def _start_compiler() -> None:
    """Initialise LLVM (numba loads the first cached kernel) with as little else in memory
    as possible, then give its pages back: the start-up peak of resident memory is the
    agent's floor plus LLVM, not plus everything the agent has loaded by then."""
    release_compiler_pages()
    _kernels.warm_up()
    release_compiler_pages()


class Agent:
    """An edge agent built from its configuration.

    Raises `ConfigValueError` when the configuration names VSS paths the catalogue lacks
    (`check_catalogue`: every one, with its key); the crash detector is built only when
    crash detection is enabled, so without it the catalogue needs no crash signal.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        catalogue: Catalogue | None = None,
        connect: bool = True,
    ) -> None:
        self.config = config
        self.started = time.monotonic()
        _start_compiler()
        self.catalogue = catalogue or config.catalogue.load()
        self.schema = WireSchema.from_catalogue(self.catalogue)
        check_catalogue(config, self.schema)
        self.decoder = BatchDecoder(self.catalogue.database, parallel=False)
        state_dir = Path(config.outbox.path).parent
        self.sequences = SequenceStore(state_dir / (Path(config.outbox.path).name + ".seq"))
        self.captures = CaptureManager(self.schema, config.captures)
        self.crash: CrashDetector | None = None
        if config.crash.enabled:
            self.crash = CrashDetector(
                self.schema,
                config.crash,
                config.vehicle,
                next_sequence=lambda: self.sequences.next("event"),
            )
        watch = set(self.captures.watch)
        if self.crash is not None:
            watch.update(self.crash.watch)
        self.sampler = Sampler(self.schema, self.decoder, config.sampling, watch=sorted(watch))
        if self.crash is not None:
            for number, threshold in self.crash.alarms.items():
                self.sampler.alarm(number, threshold)
            self.crash.alarms_counted()
        self.outbox = Outbox(config.outbox.path, max_bytes=config.outbox.max_bytes)
        self.link: MqttLink | None = None
        if connect:
            self.link = MqttLink(
                config.mqtt,
                self.outbox,
                client_id=config.mqtt.client_id or f"can2care-{config.vehicle.id}",
                status_topic=config.topic("status"),
                status_payload=self._status_payload,
                status_interval_s=config.status.interval_s,
            )
        self._warm_up()
        self._telemetry_topic = config.topic("telemetry")
        self._events_topic = config.topic("events")
        self._interval_ms = round(config.telemetry.batch_interval_s * 1000)
        self._first_ms = min(self._interval_ms, round(FIRST_BATCH_S * 1000))
        self._batch_start_ms: int | None = None
        self._batch_start_wall = 0.0
        self._batches_sent = 0
        self._counts = dict.fromkeys(
            (
                "frames_in",
                "decoded",
                "unknown",
                "skipped",
                "truncated",
                "events",
                "captures",
                "refused",
            ),
            0,
        )
        self._next_status_file = 0.0
        self._closed_outbox: OutboxStats | None = None
        self._frozen = False
        log.info(
            "agent for vehicle %s: catalogue %s (%d signals), outbox %s",
            config.vehicle.id,
            self.schema.catalogue_id,
            len(self.schema.signals),
            config.outbox.path,
        )

    def _warm_up(self) -> None:
        """Load the decoder's and the sampler's kernels now (the frame sources' kernel came
        with `_start_compiler`), then give back the
        compiler's memory: the first frames are decoded without delay, and the agent's
        resident memory is what it needs to run."""
        try:
            self.decoder.warm_up()
        except Exception as exc:  # only time is lost: the first frames load what is missing
            log.warning("decoder warm-up failed (%s); the first frames will load its kernels", exc)
        self.sampler.feed(self.decoder.decode(FrameBatch.empty()))
        release_compiler_pages()

    # -- the pipeline -------------------------------------------------------------------

    def process(self, frames: FrameBatch) -> list[CrashEvent]:
        """Decode, sample and act on one batch of frames; returns the crashes it found."""
        c = self._counts
        c["frames_in"] += len(frames)
        if not len(frames):
            self.tick()
            return []
        decoded = self.decoder.decode(frames, reuse=True)
        stats = decoded.stats
        c["decoded"] += stats.decoded
        c["unknown"] += stats.unknown
        c["skipped"] += stats.skipped
        c["truncated"] += stats.truncated
        watched = self.sampler.feed(decoded)
        events = self.crash.feed(watched) if self.crash is not None else []
        for event in events:
            self._put(self._events_topic, encode_event(event), Priority.EVENT)
            c["events"] += 1
            if self.link is not None:
                self.link.wake()
        for captured in self.captures.feed(watched):
            self._put_batch(captured.series, captured.capture)
            c["captures"] += 1
        now_ms = round(float(frames.timestamps[-1]) * 1000)
        if self.sampler.pending and self._batch_start_ms is None:
            self._batch_start_ms = now_ms
            self._batch_start_wall = time.monotonic()
        self._maybe_flush(now_ms)
        self.tick()
        return events

    def _maybe_flush(self, now_ms: int | None) -> None:
        if self._batch_start_ms is None:
            return
        due = self._first_ms if self._batches_sent == 0 else self._interval_ms
        full = self.sampler.pending >= self.config.telemetry.max_batch_samples
        by_data = now_ms is not None and now_ms - self._batch_start_ms >= due
        by_wall = (time.monotonic() - self._batch_start_wall) * 1000 >= due
        if full or by_data or by_wall:
            self.flush()

    def flush(self) -> None:
        """Send what the sampler has selected as one telemetry batch, now."""
        series = self.sampler.take()
        self._batch_start_ms = None
        if series:
            self._put_batch(series, None)

    def _put_batch(self, series: Any, capture: Any) -> None:
        batch = TelemetryBatch(
            catalogue_id=self.schema.catalogue_id,
            sequence=self.sequences.next("telemetry"),
            series=series,
            capture=capture,
        )
        payload = encode_telemetry(batch, self.schema)
        self._put(self._telemetry_topic, payload, Priority.TELEMETRY)
        self._batches_sent += 1
        if self.link is not None:
            self.link.wake()
        log.debug("batch %d: %d samples, %d bytes", batch.sequence, batch.samples, len(payload))

    def _put(self, topic: str, payload: bytes, priority: Priority) -> None:
        try:
            self.outbox.put(topic, payload, priority=priority)
        except OutboxFullError as exc:
            # Only when the budget is full of more urgent records, or the record alone is
            # larger than the budget: counted and logged, and the agent goes on.
            self._counts["refused"] += 1
            log.error(
                "%s: %d-byte %s record not stored: %s", topic, len(payload), priority.name, exc
            )

    def tick(self) -> None:
        """Timers that run even when no frames arrive: the batch by wall time, the status file."""
        if self._batch_start_ms is not None:
            self._maybe_flush(None)
        status = self.config.status
        if status.file is not None and time.monotonic() >= self._next_status_file:
            self._next_status_file = time.monotonic() + status.interval_s
            write_status_file(status.file, self.status())

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the MQTT link, and set the objects of start-up aside from the garbage
        collector for the run (`_memory.freeze_start_up`; `close` gives them back)."""
        if not self._frozen:
            freeze_start_up()
            self._frozen = True
        if self.link is not None:
            self.link.start()

    def run(self, source: FrameSource | None = None, stop: threading.Event | None = None) -> None:
        """Read the configured source (or ``source``) until it ends or ``stop`` is set."""
        # Started first: its one collection runs before the bus is open.
        self.start()
        source = source or open_source(
            self.config.can, self.config.batching, self.catalogue.database
        )
        stop = stop or threading.Event()
        try:
            for batch in source.batches():
                self.process(batch)
                if stop.is_set():
                    break
        finally:
            source.close()

    def close(self, drain_s: float = 5.0) -> None:
        """Finish captures, send the last batch, wait up to ``drain_s`` for the outbox to drain."""
        try:
            self._close(drain_s)
        finally:
            if self._frozen:
                thaw_start_up()
                self._frozen = False

    def _close(self, drain_s: float) -> None:
        for captured in self.captures.flush():
            self._put_batch(captured.series, captured.capture)
        self.flush()
        if self.link is not None:
            deadline = time.monotonic() + drain_s
            while self.outbox.stats().records and time.monotonic() < deadline:
                if not self.link.stats.connected and self.link.stats.connects == 0:
                    break
                time.sleep(0.02)
            self.link.stop()
        if self.config.status.file is not None:
            write_status_file(self.config.status.file, self.status())
        self._closed_outbox = self.outbox.stats()
        self.outbox.close()

    # -- status -------------------------------------------------------------------------

    def status(self) -> AgentStatus:
        c = self._counts
        box = self._closed_outbox or self.outbox.stats()
        link = self.link.stats if self.link is not None else None
        sampled = self.sampler.stats
        return AgentStatus(
            vehicle_id=self.config.vehicle.id,
            catalogue_id=self.schema.catalogue_id,
            time_ms=int(time.time() * 1000),
            uptime_s=round(time.monotonic() - self.started, 3),
            frames_in=c["frames_in"],
            frames_decoded=c["decoded"],
            frames_unknown=c["unknown"],
            frames_skipped=c["skipped"],
            frames_truncated=c["truncated"],
            samples_decoded=sampled.decoded,
            samples_sent=sampled.selected,
            samples_clamped=sampled.clamped,
            batches=self._batches_sent,
            events=c["events"],
            captures=c["captures"],
            outbox_records=box.records,
            outbox_bytes=box.bytes,
            outbox_evicted=box.evicted_records,
            outbox_refused=c["refused"],
            connected=bool(link and link.connected),
            last_publish_ms=link.last_publish_ms if link else None,
            last_error=link.last_error if link else None,
        )

    def _status_payload(self, online: bool) -> bytes:
        document: dict[str, Any] = {"state": "online" if online else "offline"}
        if online:
            document.update(asdict(self.status()))
        else:
            document["vehicle_id"] = self.config.vehicle.id
            document["time_ms"] = int(time.time() * 1000)
        return json.dumps(document, separators=(",", ":")).encode("utf-8")


def write_status_file(path: str | os.PathLike[str], status: AgentStatus) -> None:
    """Replace the status file atomically (a reader never sees half a document)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(asdict(status), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
