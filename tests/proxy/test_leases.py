"""The lease store with a fake wall clock: expiry, renewal, static faults, the kill switch.

No real sleeps decide anything here: the clock is a number the test moves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faults import build_fault
from faults.errors import Conflict, NotFound
from faults.match import MATCH_ALL
from proxy.leases import FaultStore


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock, seed: int | None = 7) -> FaultStore:
    return FaultStore(seed=seed, wall=clock)


def add(store: FaultStore, fault_id: str | None = None, *, ttl: float | None = 10.0, route: str = "api",
        http: bool = True, on_remove: Any = None, seed: int | None = None) -> Any:
    fault = build_fault("latency", {"delay_ms": 1}) if http else None
    return store.add(fault_id=fault_id, fault_type="latency", route=route, fault=fault, match=MATCH_ALL, ttl=ttl,
                     seed=seed, on_remove=on_remove)


async def test_a_lease_expires_at_its_time_and_not_before() -> None:
    clock = Clock()
    store = make_store(clock)
    active = add(store, "f", ttl=10.0)
    assert active.created_at == clock.now and active.expires_at == clock.now + 10.0
    clock.now += 9.999
    assert await store.expire() == [] and "f" in store
    clock.now += 0.001
    assert [f.id for f in await store.expire()] == ["f"]
    assert "f" not in store and store.for_route("api") == () and active.removed


async def test_renewal_counts_from_now() -> None:
    clock = Clock()
    store = make_store(clock)
    add(store, "f", ttl=10.0)
    clock.now += 8
    renewed = store.renew("f", 10.0)
    assert renewed.expires_at == clock.now + 10.0
    clock.now += 9
    assert await store.expire() == []  # 17 s after creation, 9 s after renewal
    clock.now += 1
    assert [f.id for f in await store.expire()] == ["f"]
    with pytest.raises(NotFound):
        store.renew("f", 10.0)


async def test_static_faults_never_expire_and_have_no_lease_to_renew() -> None:
    clock = Clock()
    store = make_store(clock)
    static = add(store, "static", ttl=None)
    assert static.expires_at is None and static.as_json()["expires_at"] is None
    clock.now += 10 * 365 * 86400
    assert await store.expire() == [] and "static" in store
    with pytest.raises(Conflict):
        store.renew("static", 5.0)


async def test_clear_removes_everything_and_runs_each_on_remove() -> None:
    clock = Clock()
    store = make_store(clock)
    removed: list[str] = []

    async def async_remove() -> None:
        removed.append("async")

    add(store, "a", on_remove=lambda: removed.append("sync"))
    add(store, "b", on_remove=async_remove, http=False, route="cache")
    add(store, "c", ttl=None)
    cleared = await store.clear()
    assert sorted(f.id for f in cleared) == ["a", "b", "c"] and store.all() == []
    assert sorted(removed) == ["async", "sync"]


async def test_clear_only_some_ids_ignores_unknown_ones() -> None:
    store = make_store(Clock())
    for fault_id in ("a", "b", "c"):
        add(store, fault_id)
    assert [f.id for f in await store.clear(["b", "nope"])] == ["b"]
    assert sorted(f.id for f in store.all()) == ["a", "c"]


async def test_removal_wakes_a_fault_sleeping_on_its_behalf() -> None:
    store = make_store(Clock())
    active = add(store, "f")
    sleeper = asyncio.ensure_future(active.sleep(3600))
    await asyncio.sleep(0)
    assert not sleeper.done()
    await store.remove("f")
    await asyncio.wait_for(sleeper, 5)  # woken at once, not after an hour
    await asyncio.wait_for(active.sleep(3600), 5)  # removed: sleeps no more


async def test_a_cancelled_sleep_ends_at_once_and_leaves_nothing_behind() -> None:
    """A client that leaves cancels its handler mid-sleep: the handler's cleanup runs on the next
    turn of the loop (no inner task to wait for), and neither the sleeper nor its timer is kept."""
    store = make_store(Clock())
    active = add(store, "f")
    loop = asyncio.get_running_loop()
    timers_before = len(loop._scheduled) if hasattr(loop, "_scheduled") else None
    cleaned = []

    async def handler() -> None:
        try:
            await active.sleep(3600)
        finally:
            cleaned.append(True)

    task = asyncio.ensure_future(handler())
    await asyncio.sleep(0)
    assert len(active._sleepers) == 1
    task.cancel()
    await asyncio.sleep(0)
    assert task.cancelled() and cleaned == [True] and not active._sleepers
    if timers_before is not None:  # asyncio's own loop keeps its timers in a list we can count
        assert len([t for t in loop._scheduled if not t.cancelled()]) <= timers_before


async def test_ids_seeds_and_duplicates() -> None:
    store = make_store(Clock(), seed=7)
    first = add(store)
    add(store, "latency-2")
    third = add(store)
    assert first.id == "latency-1" and third.id == "latency-3"  # a taken id is skipped
    with pytest.raises(Conflict):
        add(store, "latency-1")
    with pytest.raises(NotFound):
        store.get("nope")
    other = make_store(Clock(), seed=7)
    assert add(other).seed == first.seed  # a seeded store draws the same fault seeds
    assert add(store, seed=99).seed == 99


async def test_routes_see_only_their_http_faults_and_listeners_hear_every_change() -> None:
    store = make_store(Clock())
    changes: list[str] = []
    store.on_change(changes.append)
    add(store, "h1")
    add(store, "t1", http=False, route="cache")
    add(store, "h2", route="other")
    assert [f.id for f in store.for_route("api")] == ["h1"]
    assert store.for_route("cache") == ()  # toxics are the tcp layer's
    assert store.count_for("cache") == 1
    await store.remove("h1")
    assert changes == ["api", "cache", "other", "api"]


async def test_replacing_params_keeps_the_counters_and_the_lease() -> None:
    clock = Clock()
    store = make_store(clock)
    active = add(store, "f", ttl=10.0)
    active.seen, active.injections = 5, 3
    store.replace_fault("f", build_fault("latency", {"delay_ms": 50}))
    again = store.get("f")
    assert again.fault is not None and again.fault.params()["delay_ms"] == 50
    assert (again.seen, again.injections, again.expires_at) == (5, 3, clock.now + 10.0)
    assert store.for_route("api")[0].fault is again.fault


async def test_the_sweeper_expires_leases_by_the_store_clock() -> None:
    clock = Clock()
    store = make_store(clock)
    add(store, "f", ttl=10.0)
    store.start_sweeper(interval=0.01)
    try:
        await asyncio.sleep(0.05)
        assert "f" in store  # the store's clock has not moved
        clock.now += 10
        deadline = asyncio.get_running_loop().time() + 10  # generous: a busy machine only delays it
        while "f" in store and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert "f" not in store
    finally:
        await store.close()
