"""Retry-After kept per route: which requests were told to come back later, and which came too early.

When a fault answers with ``Retry-After`` (``rate_limit``, ``concurrency_limit`` with
``retry_after_s``, ``error`` with the header, ``down`` with ``retry_after_s``), the route notes
the request's identity and the time before which it should not come back. A later request with
that identity arriving before then is a violation, counted in
``brownout_retry_after_violations_total{route}``; one arriving at or after it is a polite retry
and clears the note. ``retry-after-ms`` (what Azure sends and OpenAI's SDKs read first) wins
over ``Retry-After``, which may be seconds or an HTTP date.

A request's identity is, in order: its ``Idempotency-Key`` (meant to stay the same across
retries), its ``X-Request-ID``, else a digest of the client address, method, target and body
(identical requests from one host are retries of each other). Only digests are kept, never
header values or bodies. The notes are bounded (``MAX_NOTES``, oldest first) and a note
whose time has passed is dropped when it reaches the old end.

Cost: none while no note is outstanding on the route (one truthiness test per request). While
one is, a request without an id header has its body read whole before it goes on (bounded by
``max_request_body``, as for a body match) to know who it is. An answer a fault gives after
the request went upstream (``phase: response``) knows it by its id header, or by its body
when the proxy had read it whole already; otherwise that Retry-After is not kept.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

MAX_NOTES = 100_000
MAX_WAIT_S = 86_400.0  # a Retry-After beyond a day is kept as a day


def advertised_wait_s(headers: Iterable[tuple[str, str]], wall: float | None = None) -> float | None:
    """Seconds a client is told to wait, from ``retry-after-ms`` or ``Retry-After``; None when neither is usable."""
    seconds: float | None = None
    for name, value in headers:
        lower = name.lower()
        if lower == "retry-after-ms":
            ms = _number(value)
            if ms is not None:
                return min(ms / 1000.0, MAX_WAIT_S)
        elif lower == "retry-after" and seconds is None:
            seconds = _number(value)
            if seconds is None:
                seconds = _date_wait(value, time.time() if wall is None else wall)
    return None if seconds is None else min(seconds, MAX_WAIT_S)


def header_identity(headers: Mapping[str, str]) -> bytes | None:
    for name in ("Idempotency-Key", "X-Request-ID"):
        value = headers.get(name)
        if value:
            return _digest(name.encode(), value.encode("utf-8", "surrogateescape"))
    return None


def body_identity(client: str, method: bytes, target: bytes, body: bytes) -> bytes:
    return _digest(b"body", client.encode(), method, target, body)


class RetryAfterLedger:
    """Identity digest → monotonic time before which that request should not come back."""

    def __init__(self, max_notes: int = MAX_NOTES) -> None:
        self._notes: OrderedDict[bytes, float] = OrderedDict()
        self._max = max_notes

    def __bool__(self) -> bool:
        return bool(self._notes)

    def __len__(self) -> int:
        return len(self._notes)

    def advertise(self, identity: bytes, wait_s: float, now: float) -> None:
        notes = self._notes
        notes[identity] = now + wait_s
        notes.move_to_end(identity)
        self._drop_passed(now)
        while len(notes) > self._max:
            notes.popitem(last=False)

    def arrived(self, identity: bytes, now: float) -> float | None:
        """A request with ``identity`` arrived: seconds too early (a violation), or None."""
        not_before = self._notes.get(identity)
        if not_before is None:
            self._drop_passed(now)
            return None
        if now >= not_before:
            del self._notes[identity]
            return None
        return not_before - now

    def _drop_passed(self, now: float) -> None:
        notes = self._notes
        while notes:
            identity, not_before = next(iter(notes.items()))
            if not_before > now:
                return
            del notes[identity]


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _date_wait(value: str, wall: float) -> float | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when.timestamp() - wall) if when.tzinfo is not None else None
