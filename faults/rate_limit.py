"""rate_limit: a provider's request and token budget, answered with 429 and ``Retry-After``."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from faults.base import PROCEED, Fault, Hook, Outcome, Respond, require
from faults.capacity_styles import go_duration, rate_limit_body, retry_after_s
from faults.error import text_content_type
from faults.exchange import Exchange
from faults.sse import EventSplitter, parse
from faults.token_bucket import BucketPair, KeyedBuckets, Rate

_HEADER_KEY = re.compile(r"^header:([!#$%&'*+\-.^_`|~0-9A-Za-z]+)$")
_USAGE_SCAN_MAX = 4 * 1024 * 1024  # a JSON answer longer than this is not searched for its usage


@dataclass(frozen=True)
class RateLimitFault(Fault):
    """Enforce a rate limit as LLM providers do: 429 with ``Retry-After`` once a budget is spent.

    Why realistic: every hosted model API meters requests and tokens per minute and answers
    429 beyond them; clients that retry at once, or ignore ``Retry-After``, multiply the
    load and turn a brownout into an outage. A token bucket per key refills continuously:
    ``requests_per_minute`` and/or ``tokens_per_minute``, each with a burst (``burst``,
    ``burst_tokens``; default one second's worth, at least 1: providers enforce per-minute
    limits in per-second quanta). ``key``: ``global`` (one budget for the route), ``client``
    (per client address) or ``header:NAME`` (per value of that header, e.g.
    ``header:Authorization``; values are hashed, never stored; requests without it share
    one budget). With ``tokens_per_minute``, a request reserves its JSON body's
    ``max_tokens`` (or ``max_completion_tokens``; else ``default_max_tokens``) and is settled
    against the answer's ``usage.total_tokens`` (also the final usage event of a stream);
    without a usage the reservation stands. A request larger than the token burst waits for
    a full bucket. Beyond the budget: ``status`` (429) with ``Retry-After`` (whole seconds
    until the budget has room, rounded up; ``retry_after: false`` leaves it out), OpenAI's
    ``x-ratelimit-limit-*``/``-remaining-*``/``-reset-*`` headers (``ratelimit_headers``:
    ``always`` also on admitted answers, ``rejected`` only on 429s, ``none``) and OpenAI's
    error object (``"type": "requests"`` or ``"tokens"``, ``"code": "rate_limit_exceeded"``)
    unless ``body`` (text or JSON) replaces it. ``max_keys`` bounds the budgets kept (idle
    keys that refilled are dropped first, then the least recently used). Stateful: it takes
    no probability or count match, and a PATCH keeps every budget's level (new rates apply
    from then on).
    """

    kind = "rate_limit"
    stateful = True

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    burst: int | None = None
    burst_tokens: int | None = None
    key: str = "global"
    default_max_tokens: int = 1024
    status: int = 429
    body: Any = None
    retry_after: bool = True
    ratelimit_headers: Literal["always", "rejected", "none"] = "always"
    max_keys: int = 10_000

    def validate(self) -> None:
        require(self.requests_per_minute is not None or self.tokens_per_minute is not None, "requests_per_minute",
                "give requests_per_minute, tokens_per_minute or both")
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            require(value is None or 0 < value <= 1e9, name, f"must be > 0 and <= 1e9, got {value}")
        for name, rate in (("burst", "requests_per_minute"), ("burst_tokens", "tokens_per_minute")):
            value = getattr(self, name)
            require(value is None or 1 <= value <= 1_000_000_000, name, f"must be >= 1 and <= 1e9, got {value}")
            require(value is None or getattr(self, rate) is not None, name, f"applies only with {rate}")
        require(self.key in ("global", "client") or bool(_HEADER_KEY.match(self.key)), "key",
                f"must be 'global', 'client' or 'header:NAME', got {self.key!r}")
        require(1 <= self.default_max_tokens <= 10_000_000, "default_max_tokens",
                f"must be >= 1 and <= 10000000, got {self.default_max_tokens}")
        require(400 <= self.status <= 599, "status", f"must be between 400 and 599, got {self.status}")
        require(self.body is None or isinstance(self.body, (str, dict, list)), "body", "must be text or a JSON object or list")
        require(1 <= self.max_keys <= 10_000_000, "max_keys", f"must be >= 1 and <= 10000000, got {self.max_keys}")

    # -- the budgets

    @cached_property
    def rates(self) -> tuple[Rate | None, Rate | None]:
        return _rate(self.requests_per_minute, self.burst), _rate(self.tokens_per_minute, self.burst_tokens)

    def new_state(self) -> RateLimitState:
        return RateLimitState(KeyedBuckets(*self.rates, self.max_keys), self.key)

    def reconfigure_state(self, state: Any) -> None:
        state.reconfigure(self)

    def needs_request_json(self) -> bool:
        return self.tokens_per_minute is not None

    def hooks(self) -> frozenset[Hook]:
        hooks = {Hook.ON_REQUEST}
        if self.ratelimit_headers == "always":
            hooks.add(Hook.ON_RESPONSE)
        if self.tokens_per_minute is not None:
            hooks |= {Hook.WRAP_RESPONSE_BODY, Hook.ON_EXCHANGE_END}
        return frozenset(hooks)

    def bucket_key(self, ex: Exchange) -> str:
        if self.key == "global":
            return ""
        value = ex.client if self.key == "client" else ex.request_headers.get(self.key[7:])
        # Keys may be secrets (API keys): only a digest is kept.
        return hashlib.blake2b(value.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest() if value else ""

    def reservation(self, ex: Exchange) -> int:
        doc = ex.request_json
        if isinstance(doc, dict):
            for name in ("max_tokens", "max_completion_tokens"):
                value = doc.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000_000:
                    return value
        return self.default_max_tokens

    # -- the hooks

    async def on_request(self, ex: Exchange) -> Outcome:
        state: RateLimitState = ex.state
        state.clock = ex.now
        key = self.bucket_key(ex)
        tokens = self.reservation(ex) if self.tokens_per_minute is not None else 0
        verdict, pair = state.buckets.admit(key, tokens, ex.now())
        if verdict.granted:
            if self.tokens_per_minute is not None:
                state.reservations[ex] = _Reservation(key, tokens)
            return PROCEED
        wait = retry_after_s(verdict.wait_s)
        ex.report(status=self.status, rejected=verdict.limit, retry_after_s=wait)
        headers: list[tuple[str, str]] = [("Content-Type", self._content_type)]
        if self.retry_after:
            headers.append(("Retry-After", str(wait)))
        if self.ratelimit_headers != "none":
            headers += self._ratelimit_headers(state.buckets, pair)
        per_minute = self.requests_per_minute if verdict.limit == "requests" else self.tokens_per_minute
        requested = 1 if verdict.limit == "requests" else tokens
        body = self._custom_body if self.body is not None else rate_limit_body(
            verdict.limit, per_minute or 0.0, requested, verdict.wait_s)
        return Respond(self.status, body, tuple(headers))

    async def on_response(self, ex: Exchange) -> Outcome:
        state: RateLimitState = ex.state
        pair = state.buckets.pair(self.bucket_key(ex), ex.now())  # refilled to now
        for name, value in self._ratelimit_headers(state.buckets, pair):
            ex.response_headers[name] = value
        return PROCEED

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        reservation = ex.state.reservations.get(ex)
        if reservation is None:
            return body
        ctype = ex.response_headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "text/event-stream":
            return _scan_events(body, reservation)
        if ctype.endswith("json"):
            return _scan_json(body, reservation)
        return body

    def on_exchange_end(self, ex: Exchange) -> None:
        state: RateLimitState = ex.state
        reservation = state.reservations.pop(ex, None)
        if reservation is None or reservation.used is None:
            return
        state.buckets.settle(reservation.key, reservation.tokens - reservation.used, ex.now())
        ex.report(tokens_reserved=reservation.tokens, tokens_used=reservation.used)

    # -- answers

    @cached_property
    def _content_type(self) -> str:
        if isinstance(self.body, str):
            return text_content_type(self.body)
        return "application/json"

    @cached_property
    def _custom_body(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else json.dumps(self.body).encode()

    def _ratelimit_headers(self, buckets: KeyedBuckets, pair: BucketPair) -> list[tuple[str, str]]:
        headers = []
        for limit, per_minute, rate, bucket in (("requests", self.requests_per_minute, buckets.requests_rate, pair.requests),
                                                 ("tokens", self.tokens_per_minute, buckets.tokens_rate, pair.tokens)):
            if per_minute is not None and rate is not None:
                headers += [(f"x-ratelimit-limit-{limit}", f"{per_minute:g}"),
                            (f"x-ratelimit-remaining-{limit}", str(bucket.remaining())),
                            (f"x-ratelimit-reset-{limit}", go_duration(bucket.full_in_s(rate)))]
        return headers


class _Reservation:
    __slots__ = ("key", "tokens", "used")

    def __init__(self, key: str, tokens: int) -> None:
        self.key, self.tokens = key, tokens
        self.used: int | None = None  # usage.total_tokens of the answer, once seen


class RateLimitState:
    """What a rate_limit keeps across requests (and across a PATCH): its budgets."""

    def __init__(self, buckets: KeyedBuckets, key_mode: str) -> None:
        self.buckets = buckets
        self.key_mode = key_mode
        self.clock: Callable[[], float] | None = None  # the exchanges' clock, for a PATCH between them
        self.reservations: dict[Exchange, _Reservation] = {}  # by exchange view, until it ends

    def reconfigure(self, fault: RateLimitFault) -> None:
        if fault.key != self.key_mode:  # budgets by another key mean nothing now
            self.buckets.pairs.clear()
            self.key_mode = fault.key
        now = self.clock() if self.clock is not None else None
        self.buckets.reconfigure(*fault.rates, fault.max_keys, now)
        if fault.tokens_per_minute is None:  # no token budget: nothing left to settle (and no end hook to do it)
            self.reservations.clear()


def _rate(per_minute: float | None, burst: int | None) -> Rate | None:
    if per_minute is None:
        return None
    per_s = per_minute / 60.0
    return Rate(per_s, float(burst) if burst is not None else max(1.0, per_s))


def _usage(doc: Any) -> int | None:
    usage = doc.get("usage") if isinstance(doc, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


async def _scan_events(body: AsyncIterator[bytes], reservation: _Reservation) -> AsyncIterator[bytes]:
    """Pass the stream through unchanged; note the last ``usage.total_tokens`` any event carries."""
    splitter = EventSplitter()
    async for chunk in body:
        yield chunk
        for raw in splitter.feed(chunk):
            if b"total_tokens" in raw:
                used = _usage(parse(raw).json())
                reservation.used = used if used is not None else reservation.used


async def _scan_json(body: AsyncIterator[bytes], reservation: _Reservation) -> AsyncIterator[bytes]:
    """Pass the answer through unchanged; read its ``usage.total_tokens`` at the end."""
    parts: list[bytes] = []
    size = 0
    async for chunk in body:
        yield chunk
        size += len(chunk)
        if size <= _USAGE_SCAN_MAX:
            parts.append(chunk)
    if size <= _USAGE_SCAN_MAX:
        try:
            reservation.used = _usage(json.loads(b"".join(parts)))
        except ValueError:
            pass

