"""The messages between the proxy and its recording writer process, framed on one socket.

A frame is a 4-byte big-endian length, a format byte and a tuple whose first item names it:
``m`` marshal (plain tuples, lists, bytes, str and numbers: the exchanges, at a quarter of
pickle's CPU on the proxy's core), ``p`` pickle (the rest: control messages holding
dataclasses). Both ends are the same code at the same version (the writer is started from the
proxy's own interpreter), so both are safe here: the socket is a ``socketpair`` no one else holds.

To the writer: ``("config", RecordConfig)``, ``("open", id, route, Redaction)``,
``("items", [Item, ...])``, ``("close", id)``, ``("delete", id)``, ``("flush", token)``.
From it: ``("stats", {id: RecordingStats}, cpu_seconds, [log events])`` and ``("flushed", token)``.
"""

from __future__ import annotations

import marshal
import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 30
_MARSHAL = ord("m")

# One exchange as the proxy hands it over, undecoded: (recording ids, method, target,
# request headers, request body pieces, ts, fault ids, status or None, response headers,
# response body pieces, latency_ms). Status None: no answer reached the client (it was reset,
# or left).
Item = tuple[tuple[str, ...], str, str, list[tuple[bytes, bytes]], list[bytes], float, tuple[str, ...],
             "int | None", list[tuple[bytes, bytes]], list[bytes], float]


@dataclass
class RecordingStats:
    """What the writer did for one recording (cumulative)."""

    lines: int = 0
    bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason → lines
    segments: list[str] = field(default_factory=list)  # file names in record.dir, oldest first
    deleted_segments: int = 0  # removed to keep record.max_bytes
    deleted_lines: int = 0


def frame(message: tuple[Any, ...]) -> bytes:
    try:
        data = b"m" + marshal.dumps(message)
    except ValueError:  # a type marshal does not know (a dataclass)
        data = b"p" + pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


class Reader:
    """Frames out of a byte stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[Any, ...]]:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes")
            end = HEADER.size + size
            if len(buffer) < end:
                return
            data = bytes(buffer[HEADER.size + 1:end])
            message = marshal.loads(data) if buffer[HEADER.size] == _MARSHAL else pickle.loads(data)
            del buffer[:end]
            yield message
