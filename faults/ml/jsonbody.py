"""Shared machinery of the ML kinds that rewrite a JSON response body.

The body is buffered (bounded), parsed leniently (bare ``NaN``/``Infinity`` tokens, as TF
Serving and Python servers emit them), handed to the kind, and re-serialised only when the
kind changed something: an untouched body leaves byte for byte. Only successful (2xx),
uncompressed responses are touched; for those the kind declares a ``REWRITE`` body edit, so the
proxy frames what the rewrite produces. A kind that sets ``rewrites_events`` also rewrites the
JSON ``data:`` of each Server-Sent Event of a streamed response (OpenAI ``stream: true``
chunks), event by event, without buffering the stream (a ``STREAM`` edit). Each kind reports
``values_changed`` (summed over the events of a stream).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from faults.base import BodyEdit, Fault
from faults.exchange import Exchange
from faults.json_ops import dumps
from faults.jsonpath import JsonPath
from faults.ml.protocols import Protocol, detect
from faults.sse import EventSplitter, format_event, parse
from faults.sse import dumps as dumps_event
from faults.stream import is_event_stream

MAX_BODY_BYTES = 8 * 1024 * 1024
_NOT_JSON = object()


def loads_lenient(raw: bytes) -> Any:
    """Parse JSON accepting ``NaN``/``Infinity``/``-Infinity``; ``_NOT_JSON`` when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return _NOT_JSON


def is_rewritable(ex: Exchange) -> bool:
    """A 2xx, identity-encoded, non-SSE response whose body may be JSON."""
    if ex.status is None or not 200 <= ex.status < 300 or ex.status in (204, 205) or ex.method == "HEAD":
        return False
    headers = ex.response_headers
    if headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
        return False
    ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
    return ctype in ("", "text/plain") or ctype.endswith("json")


async def buffered(body: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    """Read the whole body up to ``limit``; ``(what was read, False)`` when it was larger."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
    return b"".join(chunks), True


@dataclass(frozen=True)
class JsonResponseFault(Fault):
    """Base of the JSON-rewriting ML kinds (not registered itself)."""

    max_body_bytes: ClassVar[int] = MAX_BODY_BYTES
    rewrites_events: ClassVar[bool] = False  # also rewrite each SSE event's JSON data

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        """Edit ``doc`` in place; return how many values changed (0: send the original bytes)."""
        raise NotImplementedError

    def transform(self, raw: bytes, ex: Exchange) -> bytes:
        """The body the client gets (``raw`` itself when nothing applied)."""
        doc = loads_lenient(raw)
        if doc is _NOT_JSON:
            ex.report(values_changed=0, not_json=True)
            return raw
        changed = self.rewrite(doc, detect(ex.path, doc), ex)
        ex.report(values_changed=changed)
        return dumps(doc) if changed else raw

    def transform_event(self, raw: bytes, ex: Exchange) -> bytes:
        """One SSE event as the client gets it (``raw`` itself when nothing applied)."""
        event = parse(raw)
        doc = event.json()
        changed = self.rewrite(doc, detect(ex.path, doc), ex) if doc is not None else 0
        if not changed:
            return raw
        before = ex.details.get("values_changed", 0) if ex.details else 0
        ex.report(values_changed=int(before) + changed)
        return format_event(dumps_event(doc), event=event.event, event_id=event.id, eol=event.eol)

    def _streams_events(self, ex: Exchange) -> bool:
        return self.rewrites_events and is_event_stream(ex)

    def response_edit(self, ex: Exchange) -> BodyEdit:
        if self._streams_events(ex):
            return BodyEdit.STREAM
        return BodyEdit.REWRITE if is_rewritable(ex) else BodyEdit.NONE

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        if self._streams_events(ex):
            return rewrite_events(body, lambda raw: self.transform_event(raw, ex))
        return rewrite_whole(body, lambda raw: self.transform(raw, ex), self.max_body_bytes) if is_rewritable(ex) else body


async def rewrite_whole(body: AsyncIterator[bytes], transform: Callable[[bytes], bytes], limit: int) -> AsyncIterator[bytes]:
    """Buffer ``body`` and yield ``transform(body)``; a body over ``limit`` passes untouched."""
    raw, whole = await buffered(body, limit)
    if not whole:
        yield raw
        async for chunk in body:
            yield chunk
        return
    out = transform(raw) if raw else raw
    if out:
        yield out


async def rewrite_events(body: AsyncIterator[bytes], transform: Callable[[bytes], bytes]) -> AsyncIterator[bytes]:
    """Split ``body`` into SSE events and yield each through ``transform`` as soon as it is whole."""
    splitter = EventSplitter()
    async for chunk in body:
        out = b"".join(transform(raw) for raw in splitter.feed(chunk))
        if out:
            yield out
    tail = splitter.tail()
    if tail:
        yield tail


def is_json_request(ex: Exchange) -> bool:
    """A request whose body may be rewritten: JSON (or untyped), identity-encoded."""
    headers = ex.request_headers
    if headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
        return False
    ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
    return ctype == "" or ctype.endswith("json")


def pick(rng: random.Random, items: list[Any], fraction: float) -> list[Any]:
    """A seeded choice of ``fraction`` of ``items`` (at least one when any), in original order."""
    if not items:
        return []
    if fraction >= 1.0:
        return list(items)
    count = max(1, round(len(items) * fraction))
    chosen = set(rng.sample(range(len(items)), count))
    return [item for i, item in enumerate(items) if i in chosen]


def same(old: Any, new: Any) -> bool:
    return old is new or (type(old) is type(new) and old == new)


def edit_at(paths: tuple[JsonPath, ...], doc: Any, fn: Callable[[Any], Any], rng: random.Random,
            fraction: float = 1.0) -> int:
    """Replace a seeded ``fraction`` of the values ``paths`` select with ``fn(old)``; count changes."""
    changed = 0
    for path in paths:
        chosen = set(pick(rng, list(range(len(path.find(doc)))), fraction))
        seen = -1

        def compute(old: Any, chosen: set[int] = chosen) -> Any:
            nonlocal seen, changed
            seen += 1
            if seen not in chosen:
                return old
            new = fn(old)
            changed += not same(old, new)
            return new

        path.set(doc, compute)
    return changed
