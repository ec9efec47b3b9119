"""From an exchange as it crossed the wire to a redacted line: what the recorder and importers call.

The caller hands over the request and the answer the client got (bodies already de-chunked);
``record`` decides each body's form (JSON, bytes or SSE events), applies the redaction and
returns a ``RecordLine`` — or a ``Skip`` reason the caller counts. ``encode`` does the same
and returns the JSON line.

Framing and hop-by-hop headers (``Content-Length``, ``Transfer-Encoding``, ``Connection``...)
are not kept: the body on the line is the decoded body, and a replay frames it anew. A body
under ``Content-Encoding: gzip``/``deflate`` is decompressed (that header dropped too), so
redaction sees inside it; a body under any other coding cannot be redacted and is kept as
bytes with its header — unless the redaction looks into bodies, then the exchange is skipped
(``Skip.UNREDACTABLE``) rather than risk writing a secret.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from faults import sse
from proxy.recording.line import OCTET_STREAM, BinaryBody, Body, Event, RecordedResponse, RecordLine
from proxy.recording.redact import NO_EXTRA, Redaction, Redactor

NOT_RECORDED = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length",
})
_DECODABLE = {"gzip": 47, "x-gzip": 47, "deflate": 15, "identity": 0}  # zlib wbits (47: gzip header)


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and the answer its client got, headers as (name, value) text pairs."""

    method: str
    path: str
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    ts: float | None = None
    faults: Sequence[str] = ()
    response: RawResponse | None = None


class Skip(StrEnum):
    """Why an exchange was not written (the caller counts these)."""

    TOO_LARGE = "too_large"  # a body (or what it decompresses to) is above max_body
    UNREDACTABLE = "unredactable"  # a body under an unknown Content-Encoding while redaction looks into bodies


class _Skipped(Exception):
    def __init__(self, reason: Skip) -> None:
        self.reason = reason


def encode(exchange: Exchange, redaction: Redaction = NO_EXTRA, max_body: int | None = None) -> str | Skip:
    """The exchange as one JSON line (no newline), or why it was skipped."""
    line = record(exchange, redaction, max_body)
    if isinstance(line, Skip):
        return line
    try:
        return line.to_json()
    except ValueError:  # a JSON number beyond float range: keep those bodies as bytes instead
        fallback = record(exchange, redaction, max_body, json_bodies=False)
        return fallback if isinstance(fallback, Skip) else fallback.to_json()


def record(
    exchange: Exchange, redaction: Redaction = NO_EXTRA, max_body: int | None = None, *, json_bodies: bool = True
) -> RecordLine | Skip:
    """The exchange as a redacted ``RecordLine``, or why it was skipped."""
    redactor = redaction.redactor
    try:
        headers, body, _ = _message(exchange.headers, exchange.body, redactor, max_body, json_bodies, sse_ok=False)
        response = None
        if exchange.response is not None:
            r = exchange.response
            r_headers, r_body, events = _message(r.headers, r.body, redactor, max_body, json_bodies, sse_ok=True)
            response = RecordedResponse(r.status, tuple(r_headers), r_body, events, r.latency_ms)
    except _Skipped as skipped:
        return skipped.reason
    return RecordLine(
        exchange.method.upper(), redactor.text(exchange.path), tuple(headers), body,
        exchange.ts, tuple(exchange.faults), response,
    )


def _message(
    pairs: Sequence[tuple[str, str]], data: bytes, redactor: Redactor, max_body: int | None,
    json_bodies: bool, *, sse_ok: bool,
) -> tuple[list[tuple[str, str]], Body, tuple[Event, ...] | None]:
    if max_body is not None and len(data) > max_body:
        raise _Skipped(Skip.TOO_LARGE)
    ctype = coding = None
    kept = []
    for name, value in pairs:
        low = name.lower()
        if low in NOT_RECORDED:
            continue
        if low == "content-type":
            ctype = value
        elif low == "content-encoding":
            coding = value
        kept.append((name, value))
    readable = True
    if coding is not None and data:
        decoded = _decompress(data, coding.strip().lower(), max_body)
        if decoded is not None:
            data = decoded
            kept = [(n, v) for n, v in kept if n.lower() != "content-encoding"]
        elif redactor.touches_bodies:
            raise _Skipped(Skip.UNREDACTABLE)
        else:
            readable = False
    headers = redactor.header_pairs(kept)
    if not data:
        return headers, None, None
    if not readable:
        return headers, BinaryBody(data, ctype or OCTET_STREAM), None
    if sse_ok and ctype is not None and ctype.lower().startswith("text/event-stream"):
        return headers, None, _events(data, redactor)
    return headers, _body(data, ctype, redactor, json_bodies), None


def _decompress(data: bytes, coding: str, max_body: int | None) -> bytes | None:
    """The decoded body; None when the coding is unknown or the bytes do not decode."""
    wbits = _DECODABLE.get(coding)
    if wbits is None:
        return None
    if wbits == 0:
        return data
    limit = max_body + 1 if max_body is not None else 0
    for bits in (wbits, -15) if wbits == 15 else (wbits,):  # deflate is sent raw by some servers
        out = bytearray()
        rest = data
        try:
            while rest:  # gzip may hold several members
                d = zlib.decompressobj(bits)
                out += d.decompress(rest, limit - len(out) if limit else 0)
                if limit and len(out) >= limit:
                    raise _Skipped(Skip.TOO_LARGE)
                if not d.eof:
                    raise zlib.error("truncated")
                rest = d.unused_data if bits == 47 else b""
        except zlib.error:
            continue
        return bytes(out)
    return None


def _body(data: bytes, ctype: str | None, redactor: Redactor, json_bodies: bool) -> Body:
    if json_bodies and (data.lstrip()[:1] in (b"{", b"[") or (ctype is not None and "json" in ctype.lower())):
        doc = _strict_json(data)
        if doc is not _NOT_JSON and not isinstance(doc, (str, type(None))):
            return redactor.document(doc)
    return BinaryBody(redactor.data(data), ctype or OCTET_STREAM)


def _events(data: bytes, redactor: Redactor) -> tuple[Event, ...]:
    splitter = sse.EventSplitter()
    raws = splitter.feed(data)
    tail = splitter.tail()
    if tail.strip():
        raws.append(tail)  # a stream cut before its last blank line still delivered that event
    out = []
    for raw in raws:
        event = sse.parse(raw)
        if event.data is None:
            continue  # comments and keep-alives carry nothing to replay
        value: Any = event.data
        doc = _strict_json(value) if value[:1] in ("{", "[") else _NOT_JSON
        value = redactor.document(doc) if doc is not _NOT_JSON else redactor.text(value)
        out.append(Event(value, event.event, event.id))
    return tuple(out)


_NOT_JSON = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # made once: json.loads with options builds one per call


def _strict_json(data: bytes | str) -> Any:
    try:
        return _DECODER.decode(data.decode() if isinstance(data, bytes) else data)
    except (ValueError, RecursionError):  # UnicodeDecodeError included
        return _NOT_JSON
