"""Request payloads: a corpus (JSONL or CSV), seeded sampling, templating, wire encoding.

JSONL, one request per line: ``{"body": {...}, "method": "POST", "path": "/predict",
"headers": {...}}`` — only ``body`` is required (``null`` for none); ``path`` replaces the
target URL's path. A recording (``proxy.recording``) is a corpus as it is: its extra keys
(``ts``, ``faults``, ``response``) are ignored and a ``body_base64`` body (with its
``content_type``) is sent byte for byte. ``Host``, ``Content-Length``, ``Transfer-Encoding``
and ``Connection`` headers in a corpus are dropped: the load generator frames each request. CSV: columns ``method``, ``path``, ``headers`` (a JSON object) and
``body`` (sent as written); without a ``body`` column the other columns become a JSON
object body (numbers stay numbers).

Templating in bodies and paths: ``{{uuid}}`` (seeded), ``{{seq}}`` (request number),
``{{now}}`` (Unix seconds), ``{{now_iso}}``. A JSON string that is exactly ``"{{seq}}"`` or
``"{{now}}"`` becomes a number.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from brownout.load.client import Target
from brownout.load.edgecases import EdgeCaseMix, mutate
from faults.errors import InvalidInput

PLACEHOLDERS = ("uuid", "seq", "now", "now_iso")
_PLACEHOLDER = re.compile(r'"\{\{\s*(seq|now)\s*\}\}"|\{\{\s*([A-Za-z_]\w*)\s*\}\}')
_JSON = "application/json"
_RECORDING_KEYS = frozenset({"ts", "faults", "response", "body_base64", "content_type"})
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# A wire request: bytes to send, and the edge case it carries (None for normal traffic).
Encoded = tuple[bytes, "str | None"]
# The same, and the index of the corpus entry it was made from (None for an edge case).
Indexed = tuple[bytes, "str | None", "int | None"]


@dataclass(frozen=True, slots=True)
class Template:
    """Text with placeholders, split once so rendering is a join."""

    parts: tuple[str, ...]  # literal, name, literal, name, ..., literal

    @property
    def static(self) -> bool:
        return len(self.parts) == 1

    def render(self, ctx: RenderContext) -> str:
        if len(self.parts) == 1:
            return self.parts[0]
        out = list(self.parts)
        for i in range(1, len(out), 2):
            out[i] = ctx.value(out[i])
        return "".join(out)


def compile_template(text: str, field: str) -> Template:
    parts: list[str] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        name = m.group(1) or m.group(2)
        if name not in PLACEHOLDERS:
            raise InvalidInput(f"unknown placeholder {{{{{name}}}}}; known: {', '.join(PLACEHOLDERS)}", field)
        parts += [text[pos:m.start()], name if m.group(2) else f"{name}:number"]
        pos = m.end()
    parts.append(text[pos:])
    return Template(tuple(parts))


class RenderContext:
    """Values for one request's placeholders; uuids come from the seeded rng."""

    __slots__ = ("seq", "rng")

    def __init__(self, seq: int, rng: random.Random) -> None:
        self.seq = seq
        self.rng = rng

    def value(self, name: str) -> str:
        name = name.removesuffix(":number")
        if name == "seq":
            return str(self.seq)
        if name == "uuid":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if name == "now":
            return f"{time.time():.3f}"
        return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    method: str
    path: Template | None
    headers: tuple[tuple[str, str], ...]
    body: Template | None
    raw_body: bytes | None = None  # a recording's body_base64: sent as is, never templated

    @property
    def static(self) -> bool:
        return (self.path is None or self.path.static) and (self.body is None or self.body.static)


def _headers(value: Any, field: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(isinstance(v, (str, int, float)) for v in value.values()):
        raise InvalidInput("must be an object of header name to string", field)
    for name, v in value.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", str(name)) or any(c in str(v) for c in "\r\n"):
            raise InvalidInput(f"invalid header {name!r}", field)
    return tuple((str(k), str(v)) for k, v in value.items())


def request_template(obj: Mapping[str, Any], where: str) -> RequestTemplate:
    """One corpus entry (already parsed) as a template; errors name ``where.key``."""
    unknown = set(obj) - {"body", "method", "path", "headers"} - _RECORDING_KEYS
    if unknown:
        raise InvalidInput(f"unknown keys {sorted(unknown)}", where)
    if "body_base64" in obj:
        return _binary_template(obj, where)
    if "body" not in obj:
        raise InvalidInput("required", f"{where}.body")
    body = obj["body"]
    headers = [h for h in _headers(obj.get("headers"), f"{where}.headers") if h[0].lower() not in _FRAMING]
    method = obj.get("method") or ("GET" if body is None else "POST")
    if not isinstance(method, str) or not method.isalpha():
        raise InvalidInput(f"not an HTTP method: {method!r}", f"{where}.method")
    path = obj.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or " " in path):
        raise InvalidInput("must start with / and contain no spaces", f"{where}.path")
    text = None
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        if not isinstance(body, str) and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", _JSON))
    return RequestTemplate(
        method.upper(),
        compile_template(path, f"{where}.path") if path else None,
        tuple(headers),
        compile_template(text, f"{where}.body") if text is not None else None,
    )


def _binary_template(obj: Mapping[str, Any], where: str) -> RequestTemplate:
    base = request_template({k: v for k, v in obj.items() if k not in ("body_base64", "content_type")} | {"body": None}, where)
    try:
        raw = base64.b64decode(obj["body_base64"], validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInput(f"not base64: {exc}", f"{where}.body_base64") from None
    headers = list(base.headers)
    content_type = obj.get("content_type")
    if isinstance(content_type, str) and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", content_type))
    method = base.method if "method" in obj else "POST"
    return RequestTemplate(method, base.path, tuple(headers), None, raw)


def load_corpus(path: str | Path) -> tuple[RequestTemplate, ...]:
    """Read a JSONL or CSV corpus (by extension); errors carry the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read payloads: {exc}", "payloads", source=str(p)) from None
    out: list[RequestTemplate] = []
    try:
        if p.suffix.lower() == ".csv":
            for row in csv.DictReader(text.splitlines()):
                out.append(_csv_row(row))
        else:
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise InvalidInput(f"not JSON: {exc}", "payloads", source=str(p), line=lineno) from None
                if not isinstance(obj, Mapping):
                    raise InvalidInput("each line must be a JSON object", "payloads", source=str(p), line=lineno)
                try:
                    out.append(request_template(obj, "payloads"))
                except InvalidInput as exc:
                    raise InvalidInput(exc.message, exc.field, source=str(p), line=lineno) from None
    except InvalidInput as exc:
        if exc.source is None:
            raise InvalidInput(exc.message, exc.field, source=str(p)) from None
        raise
    if not out:
        raise InvalidInput("the payload corpus is empty", "payloads", source=str(p))
    return tuple(out)


def _csv_row(row: Mapping[str, str | None]) -> RequestTemplate:
    fixed = {k: v for k, v in row.items() if k in ("method", "path", "headers") and v}
    obj: dict[str, Any] = {}
    if fixed.get("method"):
        obj["method"] = fixed["method"]
    if fixed.get("path"):
        obj["path"] = fixed["path"]
    if fixed.get("headers"):
        try:
            obj["headers"] = json.loads(str(fixed["headers"]))
        except ValueError:
            raise InvalidInput("must be a JSON object", "payloads.headers") from None
    if "body" in row:
        obj["body"] = row["body"] or None
    else:
        obj["body"] = {k: _scalar(v or "") for k, v in row.items() if k not in ("method", "path", "headers")}
    return request_template(obj, "payloads")


def _scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def encode_request(
    method: str, path: str, target: Target, headers: Sequence[tuple[str, str]], body: bytes | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {target.host_header}"]
    if not any(k.lower() == "user-agent" for k, _ in headers):
        lines.append("User-Agent: brownout-load")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + (body or b"")


class PayloadSource:
    """Where requests come from: a corpus (or a plain GET) plus an edge-case mix, seeded.

    ``ordered``: request ``seq`` uses entry ``seq`` (wrapping around) instead of a seeded draw;
    a replay sends its recording so.
    """

    def __init__(
        self,
        templates: Sequence[RequestTemplate] = (),
        edge_cases: EdgeCaseMix | None = None,
        seed: int = 0,
        *,
        ordered: bool = False,
    ) -> None:
        self.templates = tuple(templates)
        self.edge_cases = edge_cases or EdgeCaseMix()
        self.seed = seed
        self.ordered = ordered

    @classmethod
    def from_file(cls, path: str | Path, edge_cases: EdgeCaseMix | None = None, seed: int = 0) -> PayloadSource:
        return cls(load_corpus(path), edge_cases, seed)

    def encoder(self, target: Target) -> Callable[[int], Encoded]:
        """A fast ``seq -> (wire bytes, edge case)``; static requests are encoded once."""
        indexed = self.indexed_encoder(target)
        return lambda seq: indexed(seq)[:2]  # type: ignore[return-value]

    def indexed_encoder(self, target: Target) -> Callable[[int], Indexed]:
        """``seq -> (wire bytes, edge case, corpus index)``: what the load generator sends and records."""
        rng = random.Random(self.seed)
        templates = self.templates or (RequestTemplate("GET", None, (), None),)
        cached = [self._encode(t, target, RenderContext(0, rng)) if t.static else None for t in templates]
        mix = self.edge_cases
        edge_ratio = mix.total_ratio
        count = len(templates)
        ordered = self.ordered
        known = bool(self.templates)  # a plain GET comes from no corpus: no index

        def encode(seq: int) -> Indexed:
            i = seq % count if ordered else rng.randrange(count) if count > 1 else 0
            if edge_ratio and rng.random() < edge_ratio:
                spec = mix.pick(rng.random() * edge_ratio)
                if spec is not None:
                    return self._edge(templates[i], spec.name, target, RenderContext(seq, rng)), spec.name, None
            wire = cached[i]
            if wire is None:
                wire = self._encode(templates[i], target, RenderContext(seq, rng))
            return wire, None, i if known else None

        return encode

    @staticmethod
    def _encode(t: RequestTemplate, target: Target, ctx: RenderContext) -> bytes:
        path = t.path.render(ctx) if t.path else target.path
        body = t.raw_body if t.raw_body is not None else t.body.render(ctx).encode() if t.body else None
        return encode_request(t.method, path, target, t.headers, body)

    def _edge(self, t: RequestTemplate, name: str, target: Target, ctx: RenderContext) -> bytes:
        base = t.raw_body if t.raw_body is not None else t.body.render(ctx).encode() if t.body else b"{}"
        body = mutate(name, base, ctx.rng, self.edge_cases.oversized_bytes)
        method = t.method if t.method in ("POST", "PUT", "PATCH") else "POST"
        headers = [h for h in t.headers if h[0].lower() != "content-type"] + [("Content-Type", _JSON)]
        path = t.path.render(ctx) if t.path else target.path
        return encode_request(method, path, target, headers, body)
