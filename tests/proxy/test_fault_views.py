"""Each fault's own view of an exchange: its own seeded draws, state kept across a PATCH, one
``on_exchange_end`` however the exchange ends, and one effect record per fault per exchange.

Kinds that exist only in these tests need the proxy in-process (a ``ProxyServer`` on real
sockets, with a real upstream and real clients); the log test runs ``brownout proxy``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from faults import Exchange, Fault, Outcome, catalogue
from faults.base import PROCEED
from proxy.config import ProxyConfig
from proxy.observers import ExchangeEnd, ExchangeObserver, FaultEffect
from proxy.server import ProxyServer
from tests.conftest import free_port, wait_for


class Observer(ExchangeObserver):
    def __init__(self) -> None:
        self.effects: list[FaultEffect] = []
        self.ends: list[ExchangeEnd] = []

    def fault_effect(self, effect: FaultEffect) -> None:
        self.effects.append(effect)

    def exchange_ended(self, end: ExchangeEnd) -> None:
        self.ends.append(end)

    def details(self, fault_id: str, key: str) -> list[Any]:
        return [e.details.get(key) for e in self.effects if e.fault_id == fault_id]


@dataclass
class Tally:
    """A test kind's state: what it saw, across exchanges."""

    ended: list[tuple[str, int | None]] = field(default_factory=list)
    requests: int = 0
    reconfigured: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Recorder(Fault):
    """Counts requests and records how each exchange ended (test only)."""

    kind = "recorder_test"
    label: str = "a"

    def new_state(self) -> Tally:
        return Tally()

    def reconfigure_state(self, state: Tally) -> None:
        state.reconfigured.append(self.label)

    async def on_request(self, ex: Exchange) -> Outcome:
        ex.state.requests += 1
        return PROCEED

    def on_exchange_end(self, ex: Exchange) -> None:
        ex.state.ended.append((ex.request_id, ex.status))


@pytest.fixture
def recorder_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(catalogue, "_BY_NAME", dict(catalogue._BY_NAME))
    catalogue.register(Recorder)
    yield


@pytest.fixture
async def inproc(upstream: Any) -> AsyncIterator[Any]:
    """An in-process proxy: route ``api`` in front of the test upstream, ``dead`` in front of nothing."""
    config = ProxyConfig.model_validate({
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}", "upstream": upstream[1]},
                   {"name": "dead", "listen": f"127.0.0.1:{free_port()}", "upstream": f"http://127.0.0.1:{free_port()}"}],
    })
    server = ProxyServer(config)
    await server.start()
    server.observer = Observer()
    server.http_routes[0].observers.append(server.observer)
    server.url = lambda route, path: f"http://{config.route(route).listen}{path}"  # type: ignore[union-attr]
    server.admin = f"http://{config.admin.listen}"
    async with aiohttp.ClientSession() as session:
        server.session = session
        try:
            yield server
        finally:
            await server.stop(grace=1)


async def _add(proxy: Any, body: dict[str, Any], route: str = "api") -> None:
    async with proxy.session.post(proxy.admin + "/faults", json={"route": route, **body}) as r:
        assert r.status == 201, await r.text()


async def _delete_all(proxy: Any) -> None:
    async with proxy.session.delete(proxy.admin + "/faults") as r:
        assert r.status == 200


async def _get(proxy: Any, path: str, n: int = 1) -> list[bytes]:
    bodies = []
    for i in range(n):
        async with proxy.session.get(proxy.url("api", path), headers={"X-Request-Id": f"r{i}"}) as r:
            bodies.append(await r.read())
    return bodies


LATENCY = {"delay_ms": 2, "jitter_ms": 2, "distribution": "uniform"}
CORRUPT = {"mode": "bytes", "flips": 3}


async def test_stacked_seeded_faults_draw_exactly_as_each_does_alone(inproc: Any) -> None:
    async def run(faults: list[tuple[str, str, dict[str, Any], int]], path: str = "/score") -> tuple[Any, list[bytes]]:
        inproc.observer.effects.clear()
        for fault_id, kind, params, seed in faults:
            await _add(inproc, {"id": fault_id, "type": kind, "params": params, "seed": seed})
        bodies = await _get(inproc, path, 8)
        await _delete_all(inproc)
        return {fault_id: inproc.observer.details(fault_id, "delay_ms") for fault_id, *_ in faults}, bodies

    alone_a, _ = await run([("a", "latency", LATENCY, 11)])
    alone_b, _ = await run([("b", "latency", LATENCY, 22)])
    both, _ = await run([("a", "latency", LATENCY, 11), ("b", "latency", LATENCY, 22)])
    assert len(alone_a["a"]) == 8 and len(set(alone_a["a"])) == 8  # distinct draws, so the comparison means something
    assert both == {"a": alone_a["a"], "b": alone_b["b"]}

    _, flipped_alone = await run([("c", "corrupt", CORRUPT, 33)])
    delays, flipped_stacked = await run([("a", "latency", LATENCY, 11), ("c", "corrupt", CORRUPT, 33)])
    assert delays["a"] == alone_a["a"]
    assert flipped_stacked == flipped_alone and len(set(flipped_alone)) > 1


async def test_state_is_kept_across_a_patch(inproc: Any, recorder_kind: None) -> None:
    await _add(inproc, {"id": "rec", "type": "recorder_test", "params": {"label": "a"}})
    state = inproc.store.get("rec").state
    await _get(inproc, "/score", 3)
    async with inproc.session.patch(inproc.admin + "/faults/rec", json={"params": {"label": "b"}}) as r:
        assert r.status == 200 and (await r.json())["params"] == {"label": "b"}
    await _get(inproc, "/score", 2)
    assert inproc.store.get("rec").state is state
    assert state.requests == 5 and state.reconfigured == ["b"]


async def test_crossed_responses_keeps_its_recent_bodies_across_a_patch(inproc: Any) -> None:
    await _add(inproc, {"id": "x", "type": "crossed_responses", "params": {"buffer_size": 4}})
    await _get(inproc, "/echo/one")
    recent = inproc.store.get("x").state
    async with inproc.session.patch(inproc.admin + "/faults/x", json={"params": {"buffer_size": 2}}) as r:
        assert r.status == 200
    assert inproc.store.get("x").state is recent
    bodies = list(recent.values())
    assert [b.maxlen for b in bodies] == [2] and len(bodies[0]) == 1  # resized, not forgotten


async def test_on_exchange_end_runs_exactly_once_however_the_exchange_ends(inproc: Any, upstream: Any,
                                                                          recorder_kind: None) -> None:
    server, _ = upstream
    session = inproc.session

    async def ended(fault_id: str) -> list[tuple[str, int | None]]:
        return list(inproc.store.get(fault_id).state.ended)

    # answered normally
    await _add(inproc, {"id": "rec", "type": "recorder_test"})
    await _get(inproc, "/score")
    assert await ended("rec") == [("r0", 200)]
    await _delete_all(inproc)

    # answered by another fault first (its on_request never ran, its end did)
    await _add(inproc, {"id": "err", "type": "error", "params": {"status": 503}})
    await _add(inproc, {"id": "rec", "type": "recorder_test"})
    await _get(inproc, "/score")
    assert await ended("rec") == [("r0", 503)] and inproc.store.get("rec").state.requests == 0
    await _delete_all(inproc)

    # the client went away mid-stream
    await _add(inproc, {"id": "rec", "type": "recorder_test"})
    async with session.get(inproc.url("api", "/sse"), headers={"X-Request-Id": "gone"}) as r:
        assert (await r.content.readuntil(b"\n\n")) == b"data: first\n\n"
        r.close()
    await wait_for(lambda: inproc.store.get("rec").state.ended == [("gone", 499)])
    server.released.set()
    await _delete_all(inproc)

    # the upstream refused the connection
    await _add(inproc, {"id": "rec", "type": "recorder_test"}, route="dead")
    async with session.get(inproc.url("dead", "/x"), headers={"X-Request-Id": "refused"}) as r:
        assert r.status == 502
    assert await ended("rec") == [("refused", 502)]
    await _delete_all(inproc)

    # aborted by a fault mid-body
    await _add(inproc, {"id": "rec", "type": "recorder_test"})
    await _add(inproc, {"id": "cut", "type": "reset", "params": {"after_bytes": 100}})
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.get(inproc.url("api", "/bytes/100000"), headers={"X-Request-Id": "cut"}) as r:
            await r.read()
    await wait_for(lambda: inproc.store.get("rec").state.ended == [("cut", 499)])
    await asyncio.sleep(0.1)
    assert await ended("rec") == [("cut", 499)]  # once


async def test_one_effect_per_fault_per_exchange_and_every_exchange_observed(inproc: Any) -> None:
    await _add(inproc, {"id": "lat", "type": "latency", "params": {"delay_ms": 1}, "match": {"path": "/score"}})
    await _add(inproc, {"id": "err", "type": "error", "params": {"status": 429}, "match": {"path": "/echo"}})
    await _get(inproc, "/score", 2)
    await _get(inproc, "/echo")
    await _get(inproc, "/headers")  # no fault: observed, no effect
    effects = inproc.observer.effects
    assert [(e.fault_id, e.hook, dict(e.details)) for e in effects] == [
        ("lat", "on_request", {"delay_ms": 1.0}), ("lat", "on_request", {"delay_ms": 1.0}),
        ("err", "on_request", {"status": 429})]
    assert [e.request_id for e in effects] == ["r0", "r1", "r0"] and all(e.route == "api" for e in effects)
    ends = inproc.observer.ends
    assert [(e.path, e.status, len(e.effects)) for e in ends] == [
        ("/score", 200, 1), ("/score", 200, 1), ("/echo", 429, 1), ("/headers", 200, 0)]
    with pytest.raises(TypeError):
        effects[0].details["delay_ms"] = 0  # type: ignore[index]  # a frozen record


async def test_the_log_line_carries_the_drawn_delay(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    params = {"delay_ms": 20, "jitter_ms": 10}
    async with client.post(proxy.admin + "/faults", json={"route": "api", "type": "latency", "id": "lat", "seed": 7,
                                                          "params": params}) as r:
        assert r.status == 201
    async with client.get(proxy.url("api", "/score"), headers={"X-Request-Id": "req-7"}) as r:
        assert r.status == 200
    expected = round(20 + random.Random(7).uniform(-10, 10), 3)  # the fault's first draw from its seed
    await wait_for(lambda: any(e.get("event") == "fault_injected" for e in proxy.log_events()))
    [event] = [e for e in proxy.log_events() if e.get("event") == "fault_injected"]
    assert event["fault_id"] == "lat" and event["request_id"] == "req-7" and event["hook"] == "on_request"
    assert event["details"] == {"delay_ms": expected} and expected != 20
