"""The loop both probers share: probe, hand the result over, wait the interval, until stopped."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any


async def probe_until(stop: asyncio.Event, probe_once: Callable[[], Awaitable[Any]],
                      on_result: Callable[[Any], object], interval: float) -> None:
    """Probe every ``interval`` seconds until ``stop`` is set (the caller bounds the run)."""
    while not stop.is_set():
        result = await probe_once()
        maybe = on_result(result)
        if inspect.isawaitable(maybe):
            await maybe
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
