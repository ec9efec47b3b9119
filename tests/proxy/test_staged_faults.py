"""Staged faults: ``start_at``/``end_at`` on ``POST /faults``.

The store's timers run on a fake clock here (the test fires them); the service's bounds are
checked against a fake wall clock; one end-to-end test stages a fault on a real proxy and
sees it come into force, and out of it, on time (generous bounds: a busy machine is slow).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from faults import build_fault
from faults.errors import InvalidInput, InvalidInputs
from faults.match import MATCH_ALL
from proxy.config import ProxyConfig, parse_config
from proxy.fault_requests import FaultRequest, parse_body, parse_json, parse_wall
from proxy.fault_service import FaultService
from proxy.leases import FaultStore
from proxy.yamlsource import load_yaml_text
from tests.proxy.test_leases import Clock


class Timers:
    """A fake ``loop.call_later``: the test fires what is due when it moves the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Any, tuple[Any, ...], list[bool]]] = []

    def __call__(self, delay: float, callback: Any, *args: Any) -> Any:
        cancelled = [False]
        self.pending.append((self.clock.now + delay, callback, args, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        due = [p for p in self.pending if p[0] <= self.clock.now]
        self.pending = [p for p in self.pending if p[0] > self.clock.now]
        for _, callback, args, cancelled in sorted(due, key=lambda p: p[0]):
            if not cancelled[0]:
                callback(*args)


def _store() -> tuple[FaultStore, Clock, Timers]:
    clock = Clock()
    timers = Timers(clock)
    return FaultStore(seed=1, wall=clock, call_later=timers), clock, timers


def _add(store: FaultStore, start_at: float | None, end_at: float | None = None, ttl: float = 10.0) -> Any:
    return store.add(fault_id="f", fault_type="latency", route="api", fault=build_fault("latency", {"delay_ms": 1}),
                     match=MATCH_ALL, ttl=ttl, seed=None, start_at=start_at, end_at=end_at)


def test_a_staged_fault_joins_the_route_at_start_at_and_leaves_it_at_end_at() -> None:
    store, clock, timers = _store()
    t0 = clock.now
    active = _add(store, start_at=t0 + 2.0, end_at=t0 + 5.0)
    assert active.lifecycle == "staged" and store.for_route("api") == () and store.count_for("api") == 0
    assert active.as_json()["state"] == "staged" and active.as_json()["activated_at"] is None
    timers.advance(1.999)
    assert store.for_route("api") == ()
    timers.advance(0.001)
    assert store.for_route("api") == (active,) and active.activated_at == t0 + 2.0 and store.count_for("api") == 1
    shown = active.as_json()
    assert shown["state"] == "active"
    assert datetime.fromisoformat(shown["activated_at"]).timestamp() == pytest.approx(t0 + 2.0, abs=1e-6)
    timers.advance(3.0)
    assert active.lifecycle == "ended" and active.ended_at == t0 + 5.0 and active.removed
    assert store.for_route("api") == () and "f" in store  # ended: listed until removed or expired
    assert active.as_json()["state"] == "ended"


def test_a_start_at_already_past_is_in_force_at_once() -> None:
    store, clock, _ = _store()
    active = _add(store, start_at=clock.now - 0.5)
    assert active.lifecycle == "active" and active.activated_at == clock.now and store.for_route("api") == (active,)


async def test_the_lease_of_a_staged_fault_counts_from_start_at() -> None:
    store, clock, timers = _store()
    t0 = clock.now
    active = _add(store, start_at=t0 + 20.0, ttl=10.0)
    assert active.expires_at == t0 + 30.0  # staging 20 s ahead does not eat the 10 s lease
    timers.advance(15.0)
    assert await store.expire() == []
    store.renew("f", 10.0)
    assert active.expires_at == t0 + 30.0  # renewal too counts from start_at while staged
    timers.advance(15.1)
    assert [f.id for f in await store.expire()] == ["f"]


async def test_removing_a_staged_fault_cancels_its_timer() -> None:
    store, clock, timers = _store()
    active = _add(store, start_at=clock.now + 1.0)
    await store.remove("f")
    timers.advance(2.0)
    assert active.activated_at is None and store.for_route("api") == ()
    assert active.ended_at == clock.now - 2.0  # the moment it was removed


def _service(clock: Clock) -> FaultService:
    config = ProxyConfig.model_validate({"routes": [
        {"name": "api", "listen": "127.0.0.1:1", "upstream": "http://127.0.0.1:9"},
        {"name": "cache", "kind": "tcp", "listen": "127.0.0.1:2", "upstream": "127.0.0.1:9"}]})
    return FaultService(config, FaultStore(wall=clock, call_later=Timers(clock)), wall=clock)


async def _refusal(service: FaultService, **body: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        await service.add(parse_body(FaultRequest, {"type": "latency", "route": "api", **body}))
    error = caught.value
    return error.errors[0] if isinstance(error, InvalidInputs) else error


async def test_start_at_and_end_at_are_bounded_on_the_proxys_clock() -> None:
    clock = Clock()
    service = _service(clock)
    now = clock.now
    assert (await _refusal(service, start_at=now + 3601)).field == "start_at"
    assert "ahead" in (await _refusal(service, start_at=now + 3601)).message
    assert (await _refusal(service, start_at=now - 61)).field == "start_at"
    assert (await _refusal(service, start_at=now + 5, end_at=now + 5)).field == "end_at"
    assert (await _refusal(service, end_at=now - 1)).field == "end_at"
    assert (await _refusal(service, start_at=now + 1, end_at=now + 1 + 86401)).field == "end_at"
    assert (await _refusal(service, start_at="2025-01-31 12:00:00")).field == "start_at"  # no offset, no T
    assert (await _refusal(service, start_at=True)).field == "start_at"
    assert (await _refusal(service, start_at=10**400)).field == "start_at"
    toxic = await _refusal(service, start_at=now + 1, route="cache", type="latency")
    assert toxic.field == "start_at" and "tcp" in toxic.message
    staged = await service.add(parse_body(FaultRequest, {"type": "latency", "route": "api", "start_at": now + 3600,
                                                         "end_at": now + 3600.5}))
    assert staged.lifecycle == "staged"


def test_wall_times_read_epoch_seconds_and_rfc3339_with_an_offset() -> None:
    assert parse_wall(1_700_000_000.25) == 1_700_000_000.25
    assert parse_wall("2025-01-31T12:00:00.250Z") == datetime(2025, 1, 31, 12, 0, 0, 250000, UTC).timestamp()
    assert parse_wall("2025-01-31T13:00:00+01:00") == datetime(2025, 1, 31, 12, tzinfo=UTC).timestamp()
    for bad in ("2025-13-01T00:00:00Z", "2025-01-31T12:00:00", "tomorrow", -1, float("nan"), 1e12):
        with pytest.raises(ValueError):
            parse_wall(bad)
    with pytest.raises(InvalidInput):  # NaN never gets past the JSON reader
        parse_json(b'{"start_at": NaN}')


def test_a_config_fault_cannot_be_staged() -> None:
    text = ("routes: [{name: api, listen: '127.0.0.1:1', upstream: 'http://127.0.0.1:9'}]\n"
            "faults: [{type: latency, route: api, params: {delay_ms: 1}, start_at: 1700000000}]\n")
    with pytest.raises(InvalidInputs) as caught:
        parse_config(load_yaml_text(text, "brownout.yaml", {}))
    assert [e.field for e in caught.value.errors] == ["faults[0].start_at"]
    assert caught.value.errors[0].line == 2


async def test_a_real_proxy_starts_a_staged_fault_on_time_and_ends_it(proxied: Any) -> None:
    proxy = proxied(fault_ttl={"default": "1m", "max": "10m"})
    async with aiohttp.ClientSession() as client:
        start_at = time.time() + 0.8
        body = {"type": "error", "route": "api", "id": "staged", "params": {"status": 503},
                "start_at": start_at, "end_at": start_at + 0.8}
        async with client.post(proxy.admin + "/faults", json=body) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
        assert created["state"] == "staged" and created["activated_at"] is None
        async with client.get(proxy.url("api", "/echo")) as response:
            assert response.status == 200  # staged: not in force yet
        await asyncio.sleep(max(0.0, start_at - time.time()) + 0.3)
        async with client.get(proxy.admin + "/faults/staged") as response:
            shown = await response.json()
        assert shown["state"] == "active", shown
        activated = datetime.fromisoformat(shown["activated_at"]).timestamp()
        assert start_at <= activated < start_at + 0.25  # the timer's own lateness, generous for a busy machine
        async with client.get(proxy.url("api", "/echo")) as response:
            assert response.status == 503
        await asyncio.sleep(max(0.0, start_at + 0.8 - time.time()) + 0.3)
        async with client.get(proxy.admin + "/faults") as response:
            [ended] = await response.json()
        assert ended["state"] == "ended" and datetime.fromisoformat(ended["ended_at"]).timestamp() >= start_at + 0.8
        async with client.get(proxy.url("api", "/echo")) as response:
            assert response.status == 200
        async with client.delete(proxy.admin + "/faults/staged") as response:
            assert response.status == 200
    events = [e for e in proxy.log_events() if e.get("event") in ("fault_activated", "fault_ended")]
    assert [e["event"] for e in events] == ["fault_activated", "fault_ended"]
