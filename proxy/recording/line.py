"""One recorded exchange as one JSON line: the model, its encoding and its strict decoding.

A line is a superset of the payload corpus format (``body``, ``method``, ``path``,
``headers``), so a recording is a corpus as it is::

    {"method": "POST", "path": "/predict?v=2", "headers": {"Content-Type": "application/json"},
     "body": {"amount": 12.5},
     "ts": 1714000000.123, "faults": ["slow-features"],
     "response": {"status": 200, "headers": {"Content-Type": "application/json"},
                  "body": {"score": 0.12}, "latency_ms": 12.5}}

Bodies, request and response alike, take exactly one of these forms:

* ``"body": <JSON>`` — the body was a JSON document (an object, array, number or boolean;
  a bare JSON string or ``null`` is kept as bytes so the two forms below stay unambiguous);
* ``"body": null`` — no body;
* ``"body_base64": "...", "content_type": "text/plain"`` — any other body, byte for byte;
* ``"events": [{"event"?: name, "id"?: id, "data": ...}]`` (responses only) — a
  ``text/event-stream`` answer, one item per event that had data; ``data`` is the event's
  JSON object or array when it is one, else its text.

``ts`` (Unix seconds), ``faults`` (ids of the faults that applied) and ``response`` are
optional when decoding, so a plain corpus line decodes too (its string ``body``, sent as
written, becomes bytes). Headers are an object; a repeated header is joined with ``, ``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faults.errors import InvalidInput

Headers = tuple[tuple[str, str], ...]
_REQUEST_KEYS = frozenset({"method", "path", "headers", "body", "body_base64", "content_type", "ts", "faults", "response"})
_RESPONSE_KEYS = frozenset({"status", "headers", "body", "body_base64", "content_type", "events", "latency_ms"})
_EVENT_KEYS = frozenset({"data", "event", "id"})
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class BinaryBody:
    """A body that is not a JSON document, kept byte for byte (``body_base64`` on the line)."""

    data: bytes
    content_type: str = OCTET_STREAM


# A body in the model: None (no body), a BinaryBody, or a parsed JSON document (dict, list,
# int, float, bool), never a bare str.
Body = Any


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: ``data`` is a JSON object/array or the event's text."""

    data: Any
    event: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    status: int
    headers: Headers = ()
    body: Body = None
    events: tuple[Event, ...] | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class RecordLine:
    """One exchange: the request as the client sent it, the answer as the client got it."""

    method: str
    path: str | None  # with the query; None only in a plain corpus line (the target's path)
    headers: Headers = ()
    body: Body = None
    ts: float | None = None
    faults: tuple[str, ...] = ()
    response: RecordedResponse | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.path is not None:
            out["path"] = self.path
        out["headers"] = header_object(self.headers)
        _put_body(out, self.body)
        if self.ts is not None:
            out["ts"] = round(self.ts, 6)
        out["faults"] = list(self.faults)
        if self.response is not None:
            r = self.response
            resp: dict[str, Any] = {"status": r.status, "headers": header_object(r.headers)}
            if r.events is not None:
                resp["events"] = [_event_dict(e) for e in r.events]
            else:
                _put_body(resp, r.body)
            if r.latency_ms is not None:
                resp["latency_ms"] = round(r.latency_ms, 3)
            out["response"] = resp
        return out

    def to_json(self) -> str:
        """The line, without its newline; strict JSON (raises ValueError on NaN or infinity)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def body_bytes(self) -> bytes | None:
        return body_bytes(self.body)


def body_bytes(body: Body) -> bytes | None:
    """The bytes a body stands for (a JSON document compactly encoded)."""
    if body is None:
        return None
    if isinstance(body, BinaryBody):
        return body.data
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def header_object(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header pairs as an object; a repeated name (any case) is joined with ``, ``."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        first = seen.get(key)
        if first is None:
            seen[key] = name
            out[name] = value
        else:
            out[first] = f"{out[first]}, {value}"
    return out


def _put_body(out: dict[str, Any], body: Body) -> None:
    if isinstance(body, BinaryBody):
        out["body_base64"] = base64.b64encode(body.data).decode("ascii")
        out["content_type"] = body.content_type
    else:
        out["body"] = body


def _event_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.event is not None:
        out["event"] = event.event
    if event.id is not None:
        out["id"] = event.id
    out["data"] = event.data
    return out


# -- decoding -----------------------------------------------------------------------------

def parse_line(text: str, *, source: str | None = None, line: int | None = None) -> RecordLine:
    """Decode one line; errors are ``InvalidInput`` naming the source, line and field."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"not JSON: {exc}", source=source, line=line) from None
    try:
        return parse_obj(obj)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, exc.field, source=source, line=line) from None


def read_lines(path: str | Path) -> Iterator[tuple[int, RecordLine]]:
    """``(line number, line)`` for each non-blank line of a JSONL file; stops at the first bad one."""
    p = Path(path)
    try:
        handle = p.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or exc}", source=str(p)) from None
    with handle:
        try:
            for lineno, text in enumerate(handle, 1):
                if text.strip():
                    yield lineno, parse_line(text, source=str(p), line=lineno)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"not UTF-8: {exc.reason}", source=str(p)) from None


def parse_obj(obj: Any) -> RecordLine:
    if not isinstance(obj, dict):
        raise InvalidInput("each line must be a JSON object")
    _no_unknown(obj, _REQUEST_KEYS, "")
    method = obj.get("method")
    if method is None:
        method = "GET" if obj.get("body") is None and "body_base64" not in obj else "POST"
    if not isinstance(method, str) or not method.isalpha():
        raise InvalidInput(f"not an HTTP method: {method!r}", "method")
    path = obj.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n")):
        raise InvalidInput("must start with / and contain no spaces", "path")
    headers = _headers(obj.get("headers"), "headers")
    if "body" not in obj and "body_base64" not in obj:
        raise InvalidInput("required (null for none)", "body")
    body = _body(obj, "", headers)
    ts = obj.get("ts")
    if ts is not None and not _finite(ts):
        raise InvalidInput(f"must be Unix seconds, got {ts!r}", "ts")
    faults = obj.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise InvalidInput("must be a list of fault ids", "faults")
    response = obj.get("response")
    return RecordLine(
        method.upper(), path, headers, body, float(ts) if ts is not None else None, tuple(faults),
        _response(response) if response is not None else None,
    )


def _response(obj: Any) -> RecordedResponse:
    if not isinstance(obj, dict):
        raise InvalidInput("must be an object", "response")
    _no_unknown(obj, _RESPONSE_KEYS, "response.")
    status = obj.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidInput(f"must be an HTTP status (100-599), got {status!r}", "response.status")
    headers = _headers(obj.get("headers"), "response.headers")
    latency = obj.get("latency_ms")
    if latency is not None and not (_finite(latency) and latency >= 0):
        raise InvalidInput(f"must be milliseconds >= 0, got {latency!r}", "response.latency_ms")
    events = None
    if "events" in obj:
        if "body" in obj or "body_base64" in obj:
            raise InvalidInput("a response has events or a body, not both", "response.events")
        events = _events(obj["events"])
        body = None
    else:
        body = _body(obj, "response.", headers)
    return RecordedResponse(status, headers, body, events, float(latency) if latency is not None else None)


def _body(obj: Mapping[str, Any], prefix: str, headers: Headers) -> Body:
    if "body_base64" in obj:
        if "body" in obj:
            raise InvalidInput("a line has body or body_base64, not both", f"{prefix}body_base64")
        text = obj["body_base64"]
        ctype = obj.get("content_type", OCTET_STREAM)
        if not isinstance(ctype, str):
            raise InvalidInput("must be a string", f"{prefix}content_type")
        if not isinstance(text, str):
            raise InvalidInput("must be a base64 string", f"{prefix}body_base64")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"not base64: {exc}", f"{prefix}body_base64") from None
        return BinaryBody(data, ctype)
    if "content_type" in obj:
        raise InvalidInput("only with body_base64 (a JSON body's type is in its headers)", f"{prefix}content_type")
    body = obj.get("body")
    if isinstance(body, str):  # a corpus's text body, sent as written
        return BinaryBody(body.encode(), _header(headers, "content-type") or "text/plain; charset=utf-8")
    return body


def _events(value: Any) -> tuple[Event, ...]:
    if not isinstance(value, list):
        raise InvalidInput("must be a list of events", "response.events")
    out = []
    for i, item in enumerate(value):
        where = f"response.events[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput("must be an object with data (and event, id)", where)
        _no_unknown(item, _EVENT_KEYS, f"{where}.")
        if "data" not in item:
            raise InvalidInput("required", f"{where}.data")
        for key in ("event", "id"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise InvalidInput("must be a string", f"{where}.{key}")
        out.append(Event(item["data"], item.get("event"), item.get("id")))
    return tuple(out)


def _headers(value: Any, field: str) -> Headers:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidInput("must be an object of header name to string", field)
    out = []
    for name, v in value.items():
        if not isinstance(v, str) or any(c in v for c in "\r\n"):
            raise InvalidInput(f"header {name!r} must be a string on one line", field)
        out.append((name, v))
    return tuple(out)


def _header(headers: Headers, lower_name: str) -> str | None:
    for name, value in headers:
        if name.lower() == lower_name:
            return value
    return None


def _no_unknown(obj: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise InvalidInput(f"unknown keys {unknown}; known: {', '.join(sorted(known))}", f"{prefix}{unknown[0]}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
