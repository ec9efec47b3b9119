"""Fakes for fault unit tests: a virtual clock and exchanges (one fault's view) with a seeded rng."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from multidict import CIMultiDict

from faults.exchange import Exchange


class FakeClock:
    """Virtual time: ``sleep`` advances it at once and records every sleep.

    ``give_up_after_s`` simulates a client that disconnects: a sleep that reaches that much
    virtual time raises CancelledError, as the proxy's cancellation would.
    """

    def __init__(self, start: float = 1000.0, give_up_after_s: float | None = None) -> None:
        self.start = start
        self.t = start
        self.sleeps: list[float] = []
        self.give_up_after_s = give_up_after_s

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)
        if self.give_up_after_s is not None and self.t - self.start >= self.give_up_after_s:
            raise asyncio.CancelledError
        await asyncio.sleep(0)  # still a suspension point, like a real sleep

    def advance(self, seconds: float) -> None:
        """Time passing outside the fault (a slow upstream)."""
        self.t += seconds

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_exchange(clock: FakeClock) -> Callable[..., Exchange]:
    def make(seed: int = 1, state: Any = None, **kw: Any) -> Exchange:
        status = kw.pop("status", None)
        response_headers = kw.pop("response_headers", None)
        kw.setdefault("route", "model-api")
        kw.setdefault("request_id", "req-1")
        kw.setdefault("method", "POST")
        kw.setdefault("path", "/v1/models/m:predict")
        if "request_headers" in kw:
            kw["request_headers"] = CIMultiDict(kw["request_headers"])
        ex = Exchange.build(rng=random.Random(seed), now=clock.now, sleep=clock.sleep, state=state, **kw)
        ex.status = status
        if response_headers is not None:
            ex.response_headers = CIMultiDict(response_headers)
        return ex

    return make


async def _stream(parts: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
def make_body() -> Callable[..., AsyncIterator[bytes]]:
    """``make_body(b"ab", b"cd")``: an upstream body arriving in those chunks."""
    return lambda *parts: _stream(parts)


@pytest.fixture
def drain() -> Callable[[AsyncIterator[bytes]], Awaitable[list[bytes]]]:
    async def run(body: AsyncIterator[bytes]) -> list[bytes]:
        return [chunk async for chunk in body]

    return run
