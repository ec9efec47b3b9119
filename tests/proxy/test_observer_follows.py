"""``ExchangeObserver.follows``: a sampling observer says no before anything is built for the exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from brownout.demo.web import free_port
from proxy.config import ProxyConfig
from proxy.observers import ExchangeEnd, ExchangeObserver, ExchangeStart, ExchangeTap
from proxy.server import ProxyServer


class Ends(ExchangeTap):
    __slots__ = ("into",)

    def __init__(self, into: list[ExchangeEnd]) -> None:
        self.into = into

    def ended(self, end: ExchangeEnd) -> None:
        self.into.append(end)


class EveryOther(ExchangeObserver):
    """Follows every second exchange; counts what it is asked."""

    def __init__(self) -> None:
        self.looks = 0
        self.started: list[ExchangeStart] = []
        self.ended: list[ExchangeEnd] = []

    def follows(self, headers: Sequence[tuple[bytes, bytes]], traceparent: bytes) -> bool:
        self.looks += 1
        return self.looks % 2 == 0

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        self.started.append(start)
        return Ends(self.ended)


class WatchesAll(ExchangeObserver):
    def __init__(self) -> None:
        self.ended: list[ExchangeEnd] = []

    def exchange_ended(self, end: ExchangeEnd) -> None:
        self.ended.append(end)


@pytest.fixture
async def proxy(upstream: Any) -> AsyncIterator[Any]:
    config = ProxyConfig.model_validate({"admin": {"listen": f"127.0.0.1:{free_port()}"},
                                         "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}",
                                                     "upstream": upstream[1]}]})
    server = ProxyServer(config)
    await server.start()
    server.url = f"http://{config.routes[0].listen}/echo"
    try:
        yield server
    finally:
        await server.stop(grace=1)


async def test_an_exchange_an_observer_does_not_follow_never_reaches_it(proxy: Any) -> None:
    sampler = EveryOther()
    [route] = proxy.http_routes
    route.observers.append(sampler)
    async with aiohttp.ClientSession() as session:
        for i in range(6):
            async with session.get(proxy.url, headers={"X-Request-Id": f"r{i}"}) as r:
                assert r.status == 200
    assert sampler.looks == 6
    assert [s.request_id for s in sampler.started] == ["r1", "r3", "r5"]
    assert [e.request_id for e in sampler.ended] == ["r1", "r3", "r5"]
    # One that watches the end of every exchange still sees them all.
    watcher = WatchesAll()
    route.observers.append(watcher)
    async with aiohttp.ClientSession() as session:
        for i in range(6, 10):
            async with session.get(proxy.url, headers={"X-Request-Id": f"r{i}"}) as r:
                assert r.status == 200
    assert [e.request_id for e in watcher.ended] == ["r6", "r7", "r8", "r9"]
    assert [e.request_id for e in sampler.ended] == ["r1", "r3", "r5", "r7", "r9"]


class Everything(ExchangeObserver):
    """Decides nothing in ``follows``: every exchange reaches ``exchange_started``."""

    def __init__(self) -> None:
        self.started = 0

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        self.started += 1
        return None


async def test_an_observer_that_does_not_sample_is_offered_every_exchange_beside_one_that_does(proxy: Any) -> None:
    route = proxy.http_routes[0]
    everything = Everything()
    route.observers.append(everything)
    assert route.observers.follow_all and not route.observers.watch_all  # nobody asked: follows() is not called
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(proxy.url) as response:
                assert response.status == 200
        sampler, watcher = EveryOther(), WatchesAll()
        route.observers += [sampler, watcher]
        assert not route.observers.follow_all and route.observers.watch_all
        for _ in range(4):
            async with http.get(proxy.url) as response:
                assert response.status == 200
        route.observers.remove(sampler)
        assert route.observers.follow_all
    assert everything.started == 7 and sampler.looks == 4 and len(sampler.started) == 2 and len(watcher.ended) == 4


class EveryThird(ExchangeObserver):
    """Samples by countdown: the route counts it down and asks ``follows`` only when one is due."""

    counts_down = True

    def __init__(self) -> None:
        self.until_sampled = 3
        self.asked: list[bytes] = []
        self.started: list[str] = []

    def follows(self, headers: Sequence[tuple[bytes, bytes]], traceparent: bytes) -> bool:
        self.asked.append(traceparent)
        if traceparent:
            return traceparent.endswith(b"-01")
        self.until_sampled -= 1
        if self.until_sampled:
            return False
        self.until_sampled = 3
        return True

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        self.started.append(start.request_id)
        return None


async def test_a_lone_observer_that_counts_down_is_asked_only_when_one_is_due_or_a_traceparent_came(
        proxy: Any) -> None:
    [route] = proxy.http_routes
    sampler = EveryThird()
    route.observers.append(sampler)
    assert route.observers.counted is sampler
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"
    async with aiohttp.ClientSession() as http:
        for i, traceparent in enumerate(["", "", "", "", parent + "1", "", "", parent + "0", ""]):
            headers = {"X-Request-Id": f"r{i}"} | ({"traceparent": traceparent} if traceparent else {})
            async with http.get(proxy.url, headers=headers) as response:
                assert response.status == 200
        # The new traces r0 r1 r2 | r3 r5 r6 | r8 count down by three; r4 and r7 ask with their parent.
        assert sampler.asked == [b"", (parent + "1").encode(), b"", (parent + "0").encode()]
        assert sampler.started == ["r2", "r4", "r6"] and sampler.until_sampled == 2
        # Beside another observer nothing is counted inline: it is asked for every exchange.
        route.observers.append(WatchesAll())
        assert route.observers.counted is None
        for _ in range(2):
            async with http.get(proxy.url) as response:
                assert response.status == 200
    assert len(sampler.asked) == 6 and sampler.until_sampled == 3
