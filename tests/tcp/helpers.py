"""Small helpers shared by the tcp tests."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from proxy.metrics import ProxyMetrics
from proxy.tcp import TcpLayer

T = TypeVar("T")


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class ToxiServer:
    """A TcpLayer + Toxiproxy API on a loop in a background thread."""

    loop: asyncio.AbstractEventLoop
    layer: TcpLayer
    metrics: ProxyMetrics
    api_port: int
    resets: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        """Run ``fn()`` on the server's loop and wait for its result."""
        async def run() -> T:
            return await fn()
        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)
