"""The proxy's end of the recording writer: a bounded queue, batched onto one socket, and its metrics.

``put`` is on the data path: it appends the raw exchange to the current batch (one tuple, no
decoding) unless the queue is full, in which case the exchange is dropped and counted; a
timer sends the batch a few milliseconds later as one frame. The queue is what is batched
plus what the socket's transport still buffers, in bytes, bounded by ``record.queue_bytes``:
a slow or stuck writer makes the proxy drop lines, never wait or grow.

Metrics: ``brownout_recording_lines_total{route}``, ``brownout_recording_bytes_total{route}``,
``brownout_recording_dropped_total{route,reason}`` (reasons ``queue_full``, ``writer_down``,
``too_large``, ``unredactable``, ``disk_full``, ``write_error``),
``brownout_recording_writer_cpu_seconds_total`` and ``brownout_recording_queue_bytes``. Every
drop is logged (``recording_dropped``), at most once per 10 s per route and reason, with the
count since the last such event.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from proxy.recording.config import RecordConfig
from proxy.recording.frames import Item, Reader, RecordingStats, frame

log = structlog.get_logger("brownout.proxy")

BATCH_S = 0.005  # exchanges wait this long to share a frame (one write per batch, not per exchange)
_LOG_EVERY_S = 10.0
_SOCKET_BUFFER = 4 * 1024 * 1024


class RecordingMetrics(Collector):
    """Counters kept as plain numbers (the data path adds to them) and exposed at scrape time."""

    def __init__(self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.lines: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.dropped: dict[tuple[str, str], int] = {}
        self.by_recording: dict[str, dict[str, int]] = {}  # drops on the proxy's side, per recording
        self.writer_cpu_s = 0.0
        self.queue_bytes: Callable[[], int] = lambda: 0
        self._clock = clock
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # when last logged, count then
        if registry is not None:
            registry.register(self)

    def drop(self, route: str, reason: str, n: int = 1, recordings: tuple[str, ...] = ()) -> None:
        """``n`` lines not written; ``recordings`` names them when dropped on the proxy's side."""
        for rid in recordings:
            counts = self.by_recording.setdefault(rid, {})
            counts[reason] = counts.get(reason, 0) + 1
        key = (route, reason)
        total = self.dropped.get(key, 0) + n
        self.dropped[key] = total
        last = self._logged.get(key)
        now = self._clock()
        if last is None or now - last[0] >= _LOG_EVERY_S:
            since = total - (last[1] if last is not None else 0)
            self._logged[key] = (now, total)
            log.warning("recording_dropped", route=route, reason=reason, count=since, total=total)

    def collect(self) -> Iterator[Metric]:
        lines = CounterMetricFamily("brownout_recording_lines", "Recorded lines written, by route", labels=["route"])
        size = CounterMetricFamily("brownout_recording_bytes", "Recorded bytes written, by route", labels=["route"])
        dropped = CounterMetricFamily("brownout_recording_dropped", "Exchanges sampled for a recording but not written",
                                      labels=["route", "reason"])
        for route, n in sorted(self.lines.items()):
            lines.add_metric([route], n)
        for route, n in sorted(self.bytes.items()):
            size.add_metric([route], n)
        for (route, reason), n in sorted(self.dropped.items()):
            dropped.add_metric([route, reason], n)
        yield lines
        yield size
        yield dropped
        yield CounterMetricFamily("brownout_recording_writer_cpu_seconds",
                                  "CPU time of the recording writer process (user + system)", value=self.writer_cpu_s)
        yield GaugeMetricFamily("brownout_recording_queue_bytes", "Bytes of exchanges waiting for the writer",
                                value=self.queue_bytes())


class WriterChannel(asyncio.Protocol):
    """Starts the writer process and talks to it; ``on_stats`` gets each recording's cumulative stats."""

    def __init__(self, config: RecordConfig, metrics: RecordingMetrics,
                 on_stats: Callable[[dict[str, RecordingStats]], None]) -> None:
        self.config = config
        self.metrics = metrics
        self._on_stats = on_stats
        self._limit = config.queue_bytes
        self._batch: list[Item] = []
        self._routes: list[str] = []  # the route of each batched item (for drop counts)
        self._pending = 0
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._reader = Reader()
        self._flushes: dict[int, asyncio.Future[None]] = {}
        self._tokens = itertools.count(1)
        self._closed: asyncio.Future[None] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.down = True
        self._closing = False
        metrics.queue_bytes = self.queue_size

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for s in (ours, theirs):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                s.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proxy.recording.writer", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._closed = loop.create_future()
        await loop.create_unix_connection(lambda: self, sock=ours)
        self.send(("config", self.config))
        log.info("recording_writer_started", pid=self.process.pid, dir=str(self.config.dir))

    # -- the data path

    def put(self, route: str, item: Item, size: int) -> None:
        """Queue one exchange for the writer, or drop it (counted) when the queue is full."""
        transport = self._transport
        if transport is None or self.down:
            self.metrics.drop(route, "writer_down", len(item[0]), item[0])
            return
        if self._pending + size + transport.get_write_buffer_size() > self._limit:
            self.metrics.drop(route, "queue_full", len(item[0]), item[0])
            return
        self._batch.append(item)
        self._pending += size
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(BATCH_S, self._send_batch)

    def _send_batch(self) -> None:
        self._timer = None
        if self._batch and self._transport is not None and not self.down:
            self._transport.write(frame(("items", self._batch)))
        self._batch, self._pending = [], 0

    def queue_size(self) -> int:
        buffered = self._transport.get_write_buffer_size() if self._transport is not None else 0
        return self._pending + buffered

    # -- control

    def send(self, message: tuple[Any, ...]) -> None:
        """A control message, after the exchanges already queued (never dropped)."""
        if self._transport is None or self.down:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._send_batch()
        self._transport.write(frame(message))

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until the writer has written everything queued before now."""
        if self._transport is None or self.down:
            return
        token = next(self._tokens)
        future = asyncio.get_running_loop().create_future()
        self._flushes[token] = future
        self.send(("flush", token))
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._flushes.pop(token, None)

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, close the socket, wait for the writer to finish its files."""
        self._closing = True
        if self._transport is not None and not self.down:
            if self._timer is not None:
                self._timer.cancel()
                self._send_batch()
            self._transport.close()
        if self._closed is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), timeout)
            except TimeoutError:
                pass
        if self.process is not None:
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.down = False

    def data_received(self, data: bytes) -> None:
        for message in self._reader.feed(data):
            if message[0] == "stats":
                _, stats, cpu_s, events = message
                self.metrics.writer_cpu_s = cpu_s
                for event in events:
                    log.warning(event.pop("event"), **event)
                self._on_stats(stats)
            elif message[0] == "flushed":
                future = self._flushes.get(message[1])
                if future is not None and not future.done():
                    future.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closing:
            log.error("recording_writer_lost", pid=self.process.pid if self.process else None,
                      error=repr(exc) if exc else "the writer closed its end")
        self.down = True
        self._transport = None
        for future in self._flushes.values():
            if not future.done():
                future.set_result(None)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
