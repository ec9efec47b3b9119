"""concurrency_limit on a manual clock: slots, FIFO queue, timeouts, cancellations that never leak a slot, styles."""

from __future__ import annotations

import asyncio
import json
import math
import random
from typing import Any

import pytest

from faults.base import PROCEED, Respond
from faults.capacity_styles import pick_style
from faults.catalogue import build_fault
from faults.concurrency_limit import SlotQueue
from faults.errors import InvalidInput, InvalidInputs
from faults.exchange import Exchange


class ManualClock:
    """Virtual time that moves only when the test says: a sleep blocks until ``advance`` passes its end."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        future = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.t + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for end, future in list(self.sleepers):
            if end <= self.t + 1e-12 and not future.done():
                future.set_result(None)
        self.sleepers = [(e, f) for e, f in self.sleepers if not f.done()]
        await settle()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class Server:
    """Drives a fault as the proxy does: on_request, then on_exchange_end exactly once, in ``finally``."""

    def __init__(self, params: dict[str, Any], clock: ManualClock) -> None:
        self.fault = build_fault("concurrency_limit", params)
        self.state = self.fault.new_state()
        self.clock = clock
        self.outcomes: dict[str, Any] = {}
        self.granted_order: list[str] = []
        self.views: dict[str, Exchange] = {}

    def view(self, path: str) -> Exchange:
        return Exchange.build(rng=random.Random(1), now=self.clock.now, sleep=self.clock.sleep, state=self.state,
                              route="gpu", request_id="r", method="POST", path=path)

    def start(self, name: str, path: str = "/infer") -> asyncio.Task[Any]:
        async def run() -> Any:
            ex = self.views[name] = self.view(path)
            try:
                outcome = await self.fault.on_request(ex)
                self.outcomes[name] = outcome
                if outcome is PROCEED:
                    self.granted_order.append(name)
                    await asyncio.get_running_loop().create_future()  # upstream: until the test ends it
                return outcome
            finally:
                self.fault.on_exchange_end(ex)

        return asyncio.create_task(run(), name=name)

    @property
    def queue(self) -> SlotQueue:
        return self.state.queue


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_n_in_flight_then_a_queue_then_refusals(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 2, "max_queue": 2}, clock)
    tasks = {name: server.start(name) for name in "abcde"}
    await settle()
    assert server.granted_order == ["a", "b"]
    assert server.queue.in_flight == 2 and server.state.queue_depth == 2
    refused = server.outcomes["e"]
    assert isinstance(refused, Respond) and refused.status == 503
    assert json.loads(refused.body)["reason"] == "queue_full"
    assert server.views["e"].details == {"status": 503, "rejected": "queue_full", "queued_ms": 0.0}
    tasks["a"].cancel()  # a finishes: its slot goes to c, the first in line
    await settle()
    assert server.granted_order == ["a", "b", "c"] and server.state.queue_depth == 1
    tasks["b"].cancel()
    await settle()
    assert server.granted_order == ["a", "b", "c", "d"] and server.state.queue_depth == 0
    for task in tasks.values():
        task.cancel()
    await settle()
    assert server.queue.in_flight == 0


async def test_queued_request_is_refused_after_max_queue_ms(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 1, "max_queue": 5, "max_queue_ms": 100, "retry_after_s": 2}, clock)
    first = server.start("first")
    second = server.start("second", path="/v1/messages")
    await settle()
    await clock.advance(0.099)
    assert "second" not in server.outcomes and server.state.queue_depth == 1
    await clock.advance(0.001)
    refused = server.outcomes["second"]
    assert isinstance(refused, Respond) and refused.status == 529
    assert json.loads(refused.body) == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert dict(refused.headers)["Retry-After"] == "2"
    assert server.views["second"].details == {"status": 529, "rejected": "queue_timeout", "queued_ms": 100.0}
    assert server.state.queue_depth == 0 and server.queue.in_flight == 1
    await second
    first.cancel()
    await settle()
    assert server.queue.in_flight == 0


async def test_a_queued_request_granted_in_time_reports_its_wait(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 1, "max_queue": 1, "max_queue_ms": 100}, clock)
    first = server.start("first")
    server.start("second")
    await settle()
    await clock.advance(0.04)
    first.cancel()
    await settle()
    assert server.outcomes["second"] is PROCEED
    assert server.views["second"].details == {"queued_ms": 40.0}
    await clock.advance(1.0)  # its timer was cancelled: nothing fires later
    assert server.queue.in_flight == 1


async def test_waiters_are_woken_in_arrival_order(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 1, "max_queue": 50}, clock)
    tasks = [server.start(f"r{i}") for i in range(40)]
    await settle()
    for i in range(39):
        tasks[i].cancel()  # the holder ends: the next in line gets the slot
        await settle()
    assert server.granted_order == [f"r{i}" for i in range(40)]
    tasks[39].cancel()
    await settle()
    assert server.queue.in_flight == 0 and server.state.queue_depth == 0


async def test_cancelled_waiters_leave_the_line_and_never_leak_a_slot(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 1, "max_queue": 10}, clock)
    holder = server.start("holder")
    waiters = [server.start(f"w{i}") for i in range(5)]
    await settle()
    waiters[1].cancel()  # a client gives up while waiting
    waiters[3].cancel()
    await settle()
    assert server.state.queue_depth == 3
    holder.cancel()
    await settle()
    assert server.granted_order == ["holder", "w0"]
    # granted, but the client left before its coroutine ran again: the slot must come back
    waiters[0].cancel()
    waiters[2].cancel()
    await settle()
    assert server.granted_order == ["holder", "w0", "w4"]
    waiters[4].cancel()
    await settle()
    assert server.queue.in_flight == 0 and server.state.queue_depth == 0


async def test_granted_while_cancelled_gives_the_slot_back(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 1, "max_queue": 1}, clock)
    holder = server.start("holder")
    waiter = server.start("waiter")
    await settle()
    holder.cancel()
    waiter.cancel()  # cancelled in the same loop turn as its grant
    await settle()
    assert server.queue.in_flight == 0 and server.state.queue_depth == 0
    again = server.start("again")
    await settle()
    assert server.outcomes["again"] is PROCEED
    again.cancel()
    await settle()


async def test_random_arrivals_ends_and_timeouts_keep_every_invariant(clock: ManualClock) -> None:
    rng = random.Random(42)
    server = Server({"max_concurrent": 3, "max_queue": 4, "max_queue_ms": 50}, clock)
    live: list[asyncio.Task[Any]] = []
    for step in range(600):
        action = rng.random()
        if action < 0.45:
            live.append(server.start(f"s{step}"))
        elif action < 0.8 and live:
            live.pop(rng.randrange(len(live))).cancel()
        else:
            await clock.advance(rng.choice([0.005, 0.02, 0.06]))
        await settle()
        assert 0 <= server.queue.in_flight <= 3 and server.state.queue_depth <= 4
        holders = sum(1 for t in live if not t.done() and server.outcomes.get(t.get_name()) is PROCEED)
        assert server.queue.in_flight == holders
    for task in live:
        task.cancel()
    await settle()
    assert server.queue.in_flight == 0 and server.state.queue_depth == 0 and server.state.tickets == {}


async def test_removal_wakes_waiters_who_then_go_through(clock: ManualClock) -> None:
    fault = build_fault("concurrency_limit", {"max_concurrent": 1, "max_queue": 1, "max_queue_ms": 500})
    state = fault.new_state()

    async def removed_sleep(seconds: float) -> None:  # what a removed fault's sleep does: return at once
        return None

    holder = Exchange.build(rng=random.Random(1), now=clock.now, sleep=removed_sleep, state=state, route="r",
                            request_id="1", method="GET", path="/")
    assert await fault.on_request(holder) is PROCEED
    waiter = Exchange.build(rng=random.Random(1), now=clock.now, sleep=removed_sleep, state=state, route="r",
                            request_id="2", method="GET", path="/")
    assert await fault.on_request(waiter) is PROCEED  # not refused: the limit is gone
    fault.on_exchange_end(waiter)
    fault.on_exchange_end(holder)
    assert state.in_flight == 0 and state.queue_depth == 0


async def test_a_patch_keeps_the_slots_and_grants_new_room_at_once(clock: ManualClock) -> None:
    server = Server({"max_concurrent": 1, "max_queue": 5}, clock)
    tasks = [server.start(f"r{i}") for i in range(4)]
    await settle()
    patched = build_fault("concurrency_limit", {"max_concurrent": 3, "max_queue": 5})
    patched.reconfigure_state(server.state)
    server.fault = patched
    await settle()
    assert server.granted_order == ["r0", "r1", "r2"] and server.state.queue_depth == 1
    build_fault("concurrency_limit", {"max_concurrent": 1, "max_queue": 0}).reconfigure_state(server.state)
    for task in tasks[:2]:
        task.cancel()
    await settle()
    assert server.queue.in_flight == 1 and server.granted_order == ["r0", "r1", "r2"]  # 3 → 1: nobody new yet
    for task in tasks[2:]:
        task.cancel()
    await settle()
    assert server.queue.in_flight == 0 and server.state.queue_depth == 0


def test_leave_twice_releases_once() -> None:
    queue = SlotQueue(1, 1)
    ticket = queue.acquire()
    assert ticket is not None and ticket.granted
    waiting = queue.acquire()
    assert waiting is not None and not waiting.granted
    queue.leave(ticket)
    queue.leave(ticket)
    assert queue.in_flight == 1 and waiting.granted  # the slot passed to the waiter, once


@pytest.mark.parametrize(("path", "style"), [("/v1/messages", "anthropic"), ("/v1/chat/completions", "openai"),
                                             ("/v1/completions", "openai"), ("/v2/models/resnet/infer", "triton"),
                                             ("/v2/models/m/versions/3/infer", "triton"), ("/predict", "plain")])
async def test_auto_style_by_path(clock: ManualClock, path: str, style: str) -> None:
    assert pick_style("auto", path) == style
    fault = build_fault("concurrency_limit", {"max_concurrent": 1})
    state = fault.new_state()
    views = [Exchange.build(rng=random.Random(1), now=clock.now, sleep=clock.sleep, state=state, route="r",
                            request_id=str(i), method="POST", path=path) for i in range(2)]
    assert await fault.on_request(views[0]) is PROCEED
    refused = await fault.on_request(views[1])
    body = json.loads(refused.body)
    expected = {
        "anthropic": (529, lambda b: b["error"]["type"] == "overloaded_error" and b["type"] == "error"),
        "openai": (503, lambda b: b["error"]["type"] == "server_error" and "overloaded" in b["error"]["message"]),
        "triton": (503, lambda b: b == {"error": "Exceeds maximum queue size"}),
        "plain": (503, lambda b: b["error"] == "Service Unavailable" and b["reason"] == "queue_full"),
    }[style]
    assert refused.status == expected[0] and expected[1](body), body
    assert "Retry-After" not in dict(refused.headers)


def test_explicit_style_wins_over_the_path() -> None:
    assert pick_style("triton", "/v1/messages") == "triton"


@pytest.mark.parametrize(("params", "field"), [
    ({"max_concurrent": 0}, "params.max_concurrent"),
    ({"max_queue": -1}, "params.max_queue"),
    ({"max_queue_ms": -1}, "params.max_queue_ms"),
    ({"max_queue_ms": math.inf}, "params.max_queue_ms"),
    ({"retry_after_s": -2}, "params.retry_after_s"),
    ({"style": "aws"}, "params.style"),
    ({"queue": 3}, "params.queue"),
])
def test_validation_names_the_parameter(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        build_fault("concurrency_limit", params)
    errors = err.value.errors if isinstance(err.value, InvalidInputs) else [err.value]
    assert field in [e.field for e in errors], errors
