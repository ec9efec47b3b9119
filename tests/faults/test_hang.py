"""hang: hold until the deadline (then reset/504/proceed) or until the client gives up."""

from __future__ import annotations

import asyncio
import json

import pytest

from faults.base import PROCEED, Hook, Reset, Respond
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from faults.hang import HangFault


async def test_deadline_then_reset(make_exchange, clock) -> None:
    fault = build_fault("hang", {"deadline_ms": 30_000})
    assert await fault.on_request(make_exchange()) == Reset()
    assert clock.sleeps == [30.0]


@pytest.mark.parametrize("then", ["504", 504])
async def test_deadline_then_504(then, make_exchange, clock) -> None:
    out = await build_fault("hang", {"deadline_ms": 2500, "then": then}).on_request(make_exchange())
    assert isinstance(out, Respond) and out.status == 504
    assert json.loads(out.body)["injected_by"] == "brownout"
    assert clock.sleeps == [2.5]


async def test_deadline_then_proceed(make_exchange, clock) -> None:
    assert await HangFault(deadline_ms=100, then="proceed").on_request(make_exchange()) is PROCEED
    assert clock.sleeps == [0.1]


async def test_response_phase_holds_after_upstream(make_exchange, clock) -> None:
    fault = HangFault(deadline_ms=1000, phase="response")
    ex = make_exchange()
    assert await fault.on_request(ex) is PROCEED
    assert clock.sleeps == []
    assert await fault.on_response(ex) == Reset()
    assert clock.sleeps == [1.0]


async def test_without_deadline_holds_until_client_gives_up(make_exchange, clock) -> None:
    clock.give_up_after_s = 5 * 3600  # the client disconnects after five virtual hours
    with pytest.raises(asyncio.CancelledError):
        await HangFault().on_request(make_exchange())
    assert clock.slept >= 5 * 3600


async def test_removing_the_fault_interrupts_a_real_hang(make_exchange) -> None:
    # Real asyncio sleep: cancellation (fault removed, client gone) must end the hang at once.
    ex = make_exchange()
    ex.sleep = asyncio.sleep
    task = asyncio.create_task(HangFault().on_request(ex))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1.0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"deadline_ms": -1}, "params.deadline_ms"),
        ({"then": "explode"}, "params.then"),
        ({"phase": "connection"}, "params.phase"),
        ({"timeout_ms": 5}, "params.timeout_ms"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("hang", params)
    assert [e.field for e in err.value.errors] == [field]


def test_hooks() -> None:
    assert HangFault().hooks() == {Hook.ON_REQUEST} and HangFault(phase="response").hooks() == {Hook.ON_RESPONSE}
