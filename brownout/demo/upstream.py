"""One upstream of the model API (feature store, GPU worker): its replicas and the retry policy.

``Upstream.call`` posts one JSON request under a ``RetryPlan``: first attempts go round
robin across the replicas, each retry to the next replica (a failover), every attempt with
the same ``X-Request-Id`` so the dependency (and the proxy in front of it) can tell a retry
from a new request. It returns every attempt; the caller decides what the last one means
for its own client (an answer, a fallback, or an error passed on).

An attempt is ``ok`` (2xx), ``overloaded`` (429, or 503/529 with Retry-After: the
dependency is shedding load), ``error`` (another 5xx), ``unreachable`` (no answer head:
refused, reset, closed), ``timeout``, ``rejected`` (any other status: our request is wrong,
a retry would not help) or ``broken`` (a 2xx whose body broke off: not retried either).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from .retry import BROKEN, ERROR, OK, OVERLOADED, REJECTED, TIMEOUT, UNREACHABLE, Attempt, RetryPlan, RetryPolicy

REQUEST_ID = "X-Request-Id"
_JSON = {"Content-Type": "application/json"}

# (upstream name, replica index, is a retry, outcome): told of every attempt (metrics).
AttemptHook = Callable[[str, int, bool, str], None]


def parse_retry_after(value: str | None, wall: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - wall
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is not a wait


def classify(status: int, headers: Mapping[str, str]) -> str:
    if 200 <= status < 300:
        return OK
    if status == 429 or (status in (503, 529) and "Retry-After" in headers):
        return OVERLOADED
    if status >= 500:
        return ERROR
    return REJECTED


class Upstream:
    def __init__(self, name: str, session: aiohttp.ClientSession, urls: Sequence[str], path: str,
                 timeout_s: float, policy: RetryPolicy, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None,
                 wall: Callable[[], float] = time.time, on_attempt: AttemptHook | None = None) -> None:
        if not urls:
            raise ValueError(f"{name}: need at least one replica URL")
        self.name = name
        self.urls = tuple(u.rstrip("/") + path for u in urls)
        self.policy = policy
        self.timeout_s = timeout_s
        self._session = session
        self._clock, self._sleep, self._wall = clock, sleep, wall
        self._rng = rng if rng is not None else random.Random()
        self._on_attempt = on_attempt
        self._turn = 0  # round robin across requests

    @property
    def replicas(self) -> int:
        return len(self.urls)

    async def call(self, payload: Any, request_id: str) -> tuple[Attempt, ...]:
        """Every attempt made for ``payload``, the last one deciding; never raises for the upstream's failures."""
        body = json.dumps(payload).encode()
        first, self._turn = self._turn % self.replicas, self._turn + 1
        plan = RetryPlan(self.policy, self.replicas, first, self._clock(), self.policy.deadline_s(self.timeout_s),
                         self.timeout_s, self._rng)
        while (step := plan.next(self._clock())) is not None:
            if step.wait_s > 0:
                await self._sleep(step.wait_s)
            attempt = await self._attempt(step.replica, body, request_id, max(step.timeout_s, 1e-3))
            plan.record(attempt, self._clock())
            if self._on_attempt is not None:
                self._on_attempt(self.name, step.replica, len(plan.attempts) > 1, attempt.outcome)
        return tuple(plan.attempts)

    async def _attempt(self, replica: int, body: bytes, request_id: str, timeout_s: float) -> Attempt:
        headers = {**_JSON, REQUEST_ID: request_id}
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            response = await self._session.post(self.urls[replica], data=body, headers=headers, timeout=timeout)
        except (asyncio.TimeoutError, TimeoutError):
            return Attempt(replica, TIMEOUT)
        except aiohttp.ClientError as exc:  # refused, reset, closed, or a head we cannot parse
            return Attempt(replica, UNREACHABLE, error=type(exc).__name__)
        async with response:
            status, header = response.status, response.headers.get("Retry-After")
            outcome = classify(status, response.headers)
            try:
                raw = await response.read()
            except (asyncio.TimeoutError, TimeoutError):
                return Attempt(replica, TIMEOUT, status=status)
            except aiohttp.ClientError as exc:  # the body broke off after the head
                return Attempt(replica, BROKEN if outcome == OK else outcome, status=status, error=type(exc).__name__)
        retry_after = parse_retry_after(header, self._wall()) if outcome == OVERLOADED else None
        return Attempt(replica, outcome, status=status, retry_after_s=retry_after,
                       retry_after=header if outcome == OVERLOADED else None, body=raw)


def gave_up(attempts: Sequence[Attempt]) -> str:
    """What the attempts came to, for a message: ``replica 0 answered 502; replica 1 timed out``."""
    return "; ".join(a.describe() for a in attempts)

