"""The recording writer: a process of its own that decodes, redacts, encodes and writes exchanges.

The proxy hands over raw exchanges (``proxy.recording.frames``) and never waits for this
process, so decoding, redaction, JSON encoding and disk writes cost the data path nothing
but a copy; this process's own CPU is published beside the proxy's
(``brownout_recording_writer_cpu_seconds_total``).

Files: ``<record.dir>/<recording id>.<segment>.jsonl`` (segment 0001, 0002, ...), created
mode 0600 with ``O_EXCL | O_NOFOLLOW``; a segment is closed and the next one opened before a
line would take it past ``max_file_bytes``. When the segments in the folder (this run's and
earlier ones') together pass ``max_bytes``, the oldest are deleted. Lines are written whole:
a write that fails (disk full, a file size limit) is cut back to the last whole line and its
lines are counted as dropped (``disk_full`` or ``write_error``), as are exchanges ``encode``
skips (``too_large``, ``unredactable``). It exits when the proxy closes the socket.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.recording.config import RecordConfig
from proxy.recording.encode import Exchange, RawResponse, Skip, encode
from proxy.recording.frames import Item, Reader, RecordingStats, frame
from proxy.recording.redact import Redaction

SEGMENT = re.compile(r"^(rec-[0-9a-z-]{1,64})\.(\d{4,})\.jsonl$")
_STATS_EVERY_S = 0.25
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def segment_name(recording_id: str, seq: int) -> str:
    return f"{recording_id}.{seq:04d}.jsonl"


@dataclass
class _Segment:
    name: str
    size: int
    lines: int
    owner: str | None  # the recording it belongs to (None: a file from an earlier run)


@dataclass
class _Recording:
    id: str
    route: str
    redaction: Redaction
    stats: RecordingStats = field(default_factory=RecordingStats)
    fd: int | None = None
    current: _Segment | None = None
    seq: int = 0


class Writer:
    def __init__(self, config: RecordConfig, send: Any, clock: Any = time.monotonic) -> None:
        self.config = config
        self.dir = Path(config.dir)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._send = send
        self._clock = clock
        self.recordings: dict[str, _Recording] = {}
        self.ring: deque[_Segment] = deque()  # every segment in the folder, oldest first
        self.total = 0
        self.events: list[dict[str, Any]] = []
        self.dirty = False
        self._last_stats = 0.0
        self._adopt_existing()

    def _adopt_existing(self) -> None:
        """Segments left by an earlier run count against ``max_bytes`` too (oldest deleted first)."""
        found = []
        for entry in os.scandir(self.dir):
            if SEGMENT.match(entry.name) and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                found.append((st.st_mtime, entry.name, st.st_size))
        for _, name, size in sorted(found):
            self.ring.append(_Segment(name, size, 0, None))
            self.total += size

    # -- messages

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "items":
            self._items(message[1])
        elif kind == "open":
            _, rid, route, redaction = message
            self.recordings[rid] = _Recording(rid, route, redaction)
        elif kind == "close":
            rec = self.recordings.get(message[1])
            if rec is not None:
                self._close_segment(rec)
        elif kind == "delete":
            self._delete(message[1])
        elif kind == "flush":
            self.send_stats()
            self._send(("flushed", message[1]))
        self.dirty = True

    def _items(self, items: list[Item]) -> None:
        max_body = self.config.max_body
        pending: dict[str, list[bytes]] = {}
        for ids, method, target, headers, body, ts, faults, status, r_headers, r_body, latency_ms in items:
            response = None
            if status is not None:
                response = RawResponse(status, _text(r_headers), b"".join(r_body), latency_ms)
            exchange = Exchange(method, target, _text(headers), b"".join(body), ts, faults, response)
            for rid in ids:
                rec = self.recordings.get(rid)
                if rec is None:
                    continue
                line = encode(exchange, rec.redaction, max_body)
                if isinstance(line, Skip):
                    _count(rec.stats.dropped, line.value)
                else:
                    pending.setdefault(rid, []).append(line.encode() + b"\n")
        for rid, lines in pending.items():
            self._write(self.recordings[rid], lines)
        self._enforce_cap()

    # -- files

    def _write(self, rec: _Recording, lines: list[bytes]) -> None:
        limit = self.config.max_file_bytes
        chunk: list[bytes] = []
        size = 0
        base = rec.current.size if rec.current is not None else 0
        for line in lines:
            if base + size + len(line) > limit and base + size > 0:  # the next segment
                self._append(rec, chunk)
                chunk, size, base = [], 0, 0
                self._close_segment(rec)
            chunk.append(line)
            size += len(line)
        self._append(rec, chunk)

    def _append(self, rec: _Recording, lines: list[bytes]) -> None:
        """Write whole lines; a failed write is cut back to the last whole line."""
        if not lines:
            return
        try:
            self._open(rec)
            self._write_all(rec, b"".join(lines))
            self._wrote(rec, len(lines), sum(map(len, lines)))
            return
        except OSError:
            pass
        for line in lines:  # line by line: as many as fit
            try:
                self._open(rec)
                self._write_all(rec, line)
                self._wrote(rec, 1, len(line))
            except OSError as exc:
                reason = "disk_full" if exc.errno in _FULL else "write_error"
                _count(rec.stats.dropped, reason)
                self._event("recording_write_failed", rec, reason=reason, error=exc.strerror or str(exc))

    def _write_all(self, rec: _Recording, data: bytes) -> None:
        assert rec.fd is not None and rec.current is not None
        start = rec.current.size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(rec.fd, view):]
        except OSError:
            try:
                os.ftruncate(rec.fd, start)
            except OSError:
                pass
            raise

    def _wrote(self, rec: _Recording, lines: int, size: int) -> None:
        assert rec.current is not None
        rec.current.size += size
        rec.current.lines += lines
        rec.stats.lines += lines
        rec.stats.bytes += size
        self.total += size

    def _open(self, rec: _Recording) -> None:
        if rec.fd is not None:
            return
        rec.seq += 1
        name = segment_name(rec.id, rec.seq)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        rec.fd = os.open(self.dir / name, flags, 0o600)
        rec.current = _Segment(name, 0, 0, rec.id)
        self.ring.append(rec.current)
        rec.stats.segments.append(name)

    def _close_segment(self, rec: _Recording) -> None:
        if rec.fd is not None:
            os.close(rec.fd)
        rec.fd, rec.current = None, None

    def _enforce_cap(self) -> None:
        while self.total > self.config.max_bytes and len(self.ring) > 1:
            oldest = self.ring.popleft()
            owner = self.recordings.get(oldest.owner) if oldest.owner else None
            if owner is not None and owner.current is oldest:
                self._close_segment(owner)
            self._unlink(oldest)
            if owner is not None:
                owner.stats.segments.remove(oldest.name)
                owner.stats.deleted_segments += 1
                owner.stats.deleted_lines += oldest.lines
                self._event("recording_segment_deleted", owner, segment=oldest.name, lines=oldest.lines,
                            max_bytes=self.config.max_bytes)

    def _unlink(self, segment: _Segment) -> None:
        try:
            os.unlink(self.dir / segment.name)
        except FileNotFoundError:
            pass
        self.total -= segment.size

    def _delete(self, rid: str) -> None:
        rec = self.recordings.pop(rid, None)
        if rec is None:
            return
        self._close_segment(rec)
        for segment in [s for s in self.ring if s.owner == rid]:
            self.ring.remove(segment)
            self._unlink(segment)

    # -- reporting

    def _event(self, event: str, rec: _Recording, **fields: Any) -> None:
        if len(self.events) < 100:  # a full disk fails every write: the counts carry the rest
            self.events.append({"event": event, "recording": rec.id, "route": rec.route, **fields})

    def send_stats(self) -> None:
        stats = {rid: rec.stats for rid, rec in self.recordings.items()}
        self._send(("stats", stats, time.process_time(), self.events))
        self.events = []
        self.dirty = False
        self._last_stats = self._clock()

    def tick(self) -> None:
        if self.dirty and self._clock() - self._last_stats >= _STATS_EVERY_S:
            self.send_stats()

    def close(self) -> None:
        for rec in self.recordings.values():
            self._close_segment(rec)


def _text(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]


def _count(counts: dict[str, int], reason: str) -> None:
    counts[reason] = counts.get(reason, 0) + 1


def serve(sock: socket.socket) -> None:
    """Read frames until the proxy closes the socket; the first one is the config."""
    reader = Reader()
    writer: Writer | None = None

    def send(message: tuple[Any, ...]) -> None:
        sock.sendall(frame(message))

    sock.settimeout(_STATS_EVERY_S)
    try:
        while True:
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                data = None
            if data == b"":
                break
            for message in reader.feed(data or b""):
                if message[0] == "config":
                    writer = Writer(message[1], send)
                elif writer is not None:
                    writer.handle(message)
            if writer is not None:
                writer.tick()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        if writer is not None:
            writer.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the proxy drains on Ctrl-C; this ends when it closes the socket
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file size limit fails the write (EFBIG) instead of killing us
    serve(socket.socket(fileno=int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
