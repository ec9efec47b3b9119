"""Server-Sent Events framing: split a chunk stream into events, read their fields, write new ones.

Rules honoured (the WHATWG HTML standard's event-stream parsing): an event ends at a blank line; lines end in CRLF,
CR or LF; ``:`` starts a comment (keep-alive); several ``data:`` lines join with ``\\n``;
one space after the colon is dropped. Events split across reads are reassembled — the
splitter buffers by line, never by read — and each event keeps its exact original bytes,
so an event nobody changes is forwarded byte for byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_EOL = re.compile(rb"\r\n|\r|\n")
_EOL_TEXT = re.compile(r"\r\n|\r|\n")
DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One parsed event. ``data`` is None when the event has no ``data:`` field (comments only)."""

    raw: bytes
    data: str | None
    event: str | None = None
    id: str | None = None

    @property
    def is_done(self) -> bool:
        return self.data is not None and self.data.strip() == DONE

    @property
    def eol(self) -> bytes:
        return b"\r\n" if b"\r\n" in self.raw else b"\n"

    def json(self) -> Any:
        """The data as JSON, or None when it is not JSON (``[DONE]``, plain text)."""
        if self.data is None or self.is_done:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class EventSplitter:
    """Feed chunks, get complete raw events; ``tail()`` is what remains when the stream ends."""

    def __init__(self) -> None:
        self._buf = bytearray()  # appended in place: a big event arriving in small reads stays linear
        self._scan = 0  # where the next unread line starts (the current event starts at 0)
        self._seen = 0  # bytes after ``_scan`` already known to hold no line ending

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf
        buf += chunk
        events: list[bytes] = []
        start, scan = 0, self._scan
        searched = scan + self._seen  # a long line arriving in small reads is searched once
        while True:
            match = _EOL.search(buf, searched)
            if match is None:
                searched = len(buf)
                break
            if match.group() == b"\r" and match.end() == len(buf):
                searched = match.start()
                break  # a CR at the very end may be the first half of a CRLF: wait for more
            blank = match.start() == scan
            searched = match.end()
            scan = match.end()
            if blank:
                events.append(bytes(buf[start:scan]))
                start = scan
        del buf[:start]  # once per read, however many events it completed
        self._scan, self._seen = scan - start, searched - scan
        return events

    def tail(self) -> bytes:
        rest = bytes(self._buf)
        self._buf, self._scan, self._seen = bytearray(), 0, 0
        return rest


def parse(raw: bytes) -> SseEvent:
    data: list[str] = []
    event = event_id = None
    for line in _EOL_TEXT.split(raw.decode("utf-8", errors="replace")):
        if not line or line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value
    return SseEvent(raw, "\n".join(data) if data else None, event, event_id)


def format_event(data: str, *, event: str | None = None, event_id: str | None = None, eol: bytes = b"\n") -> bytes:
    """Frame one event; multi-line data becomes several ``data:`` lines."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.split("\n")]
    text = eol.decode().join(lines) + eol.decode() * 2
    return text.encode()


def dumps(doc: Any) -> str:
    """Compact JSON for a re-framed event (non-ASCII kept, NaN as the bare token)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
