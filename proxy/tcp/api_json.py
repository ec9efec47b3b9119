"""JSON in and out of the Toxiproxy-compatible API, with Go ``encoding/json``'s habits.

Clients rely on some of them: object keys match case-insensitively, unknown keys are
ignored, ``null`` means "not given", only the first JSON value of a body is read, and a
value of the wrong type is a 400 ``bad request body: json: cannot unmarshal ...``. Go's
decoder also has no ``NaN``/``Infinity``, refuses a number that does not fit its field
(``1e400`` as a float32) and nesting past a depth limit: all 400 here too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from proxy.tcp.link import ToxicEntry
from proxy.tcp.relay import TcpProxy

_decoder = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))
_FLOAT32_MAX = 3.4028234663852886e38
_GO_TYPES = {str: "string", bool: "bool", float: "float32", dict: "map[string]interface {}", list: "[]interface {}"}


class BadBody(Exception):
    """The body could not be decoded (400 ``bad request body: <message>``)."""


def _reject_constant(name: str) -> Any:
    raise BadBody(f"invalid character '{name[0]}' looking for beginning of value")


def decode(text: str) -> Any:
    """The first JSON value of ``text`` (trailing bytes are ignored, as Go's decoder does)."""
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise BadBody("EOF")
    try:
        value, _ = _decoder.raw_decode(stripped)
    except RecursionError:
        raise BadBody("exceeded max depth") from None
    except json.JSONDecodeError as exc:
        if exc.pos >= len(stripped):
            raise BadBody("unexpected EOF") from None
        raise BadBody(f"invalid character {stripped[exc.pos]!r} looking for beginning of value") from None
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def fields(value: Any, struct: str, spec: Mapping[str, type]) -> dict[str, Any]:
    """Pick ``spec``'s fields from a JSON object, keys case-insensitively; None = absent."""
    if not isinstance(value, dict):
        raise BadBody(f"json: cannot unmarshal {_kind(value)} into Go value of type {struct}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key.lower()
        if name not in spec or item is None:
            continue
        expected = spec[name]
        ok = isinstance(item, (int, float)) and not isinstance(item, bool) if expected is float else isinstance(item, expected)
        if not ok:
            raise BadBody(f"json: cannot unmarshal {_kind(item)} into Go struct field {struct}.{name} "
                          f"of type {_GO_TYPES.get(expected, expected.__name__)}")
        if expected is float and not _fits_float32(item):
            raise BadBody(f"json: cannot unmarshal number {item} into Go struct field {struct}.{name} of type float32")
        out[name] = item
    return out


def _fits_float32(number: float) -> bool:
    if isinstance(number, int):  # compared as int: float() of a 400-digit int overflows
        return -_FLOAT32_MAX <= number <= _FLOAT32_MAX
    return math.isfinite(number) and abs(number) <= _FLOAT32_MAX


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def ok(value: Any, status: int = 200) -> web.Response:
    """Compact JSON, no trailing newline (Go's json.Marshal)."""
    return web.Response(status=status, body=dumps(value), content_type="application/json")


def error(status: int, message: str) -> web.Response:
    """Toxiproxy's error body: JSON, newline-terminated, sent as text/plain (Go's http.Error)."""
    return web.Response(
        status=status, body=dumps({"error": message, "status": status}) + b"\n",
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


def toxic_json(entry: ToxicEntry) -> dict[str, Any]:
    return entry.as_json()


def proxy_json(proxy: TcpProxy) -> dict[str, Any]:
    return proxy.as_json()
