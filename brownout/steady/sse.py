"""Server-sent events, parsed as the spec says (ml-protocols §1.7), timestamped per read.

Buffered by line, never by read: an event may be split across reads, and one read may
hold several events. Lines end in CRLF, CR or LF; a line starting with ``:`` is a comment
(keep-alive); ``data:`` lines of one event are joined with ``\\n``; one space after the
colon is dropped; an event ends at a blank line. Each event carries the time the read that
completed it arrived, which is what TTFT and inter-token latency are measured from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    at: float          # clock seconds when the read that completed this event arrived
    data: str
    event: str = "message"


class SseParser:
    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes, at: float) -> list[SseEvent]:
        """The events completed by ``chunk``, in order."""
        self._buf += chunk
        events: list[SseEvent] = []
        while True:
            cr, lf = self._buf.find(b"\r"), self._buf.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            i = min(ends)
            skip = 1
            if i == cr:
                if i + 1 == len(self._buf):
                    break  # a CR at the end of a read may be the first half of CRLF
                skip = 2 if self._buf[i + 1:i + 2] == b"\n" else 1
            line = self._buf[:i].decode("utf-8", errors="replace")
            self._buf = self._buf[i + skip:]
            event = self._line(line, at)
            if event is not None:
                events.append(event)
        return events

    def close(self, at: float) -> list[SseEvent]:
        """End of stream: a trailing CR ends its line; an event with no blank line after it is dropped."""
        if self._buf.endswith(b"\r"):
            return self.feed(b"\n", at)
        return []

    def _line(self, line: str, at: float) -> SseEvent | None:
        if line == "":
            if not self._data and not self._event:
                return None
            event = SseEvent(at, "\n".join(self._data), self._event or "message")
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # id:, retry: and unknown fields do not matter here
