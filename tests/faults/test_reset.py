"""reset: RST in the right phase, or exactly N body bytes then an abort."""

from __future__ import annotations

import pytest

from faults.base import PROCEED, AbortExchange, Hook, Reset
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from faults.reset import ResetFault


async def test_default_resets_once_the_request_head_is_read(make_exchange) -> None:
    fault = build_fault("reset", {})
    ex = make_exchange()
    assert fault.hooks() == {Hook.ON_REQUEST}
    assert await fault.on_connection(ex) is PROCEED
    assert await fault.on_request(ex) == Reset(graceful=False)
    assert await fault.on_response(ex) is PROCEED
    assert ex.details == {"phase": "request"}


@pytest.mark.parametrize("phase", ["connection", "request", "response"])
async def test_phase_moves_the_reset(phase: str, make_exchange) -> None:
    fault = ResetFault(phase=phase)
    ex = make_exchange()
    outcomes = {"connection": await fault.on_connection(ex), "request": await fault.on_request(ex),
                "response": await fault.on_response(ex)}
    assert outcomes[phase] == Reset()
    assert all(v is PROCEED for k, v in outcomes.items() if k != phase)
    assert fault.hooks() == {Hook(f"on_{phase}")}


@pytest.mark.parametrize("parts", [(b"0123456789",), (b"012", b"3456", b"789"), (b"01234", b"56789")])
async def test_after_bytes_sends_exactly_n_then_aborts(parts, make_exchange, make_body) -> None:
    fault = ResetFault(after_bytes=5)
    ex = make_exchange(status=200, response_headers={"Content-Length": "10"})
    for hook in (fault.on_connection, fault.on_request, fault.on_response):
        assert await hook(ex) is PROCEED
    got = b""
    with pytest.raises(AbortExchange):
        async for chunk in fault.wrap_response_body(ex, make_body(*parts)):
            got += chunk
    assert got == b"01234"
    assert ex.response_headers["Content-Length"] == "10"  # so the client sees a short read
    assert ex.details == {"phase": "response", "after_bytes": 5}


async def test_after_zero_bytes_sends_head_only(make_exchange, make_body) -> None:
    got = []
    with pytest.raises(AbortExchange):
        async for chunk in ResetFault(after_bytes=0).wrap_response_body(make_exchange(), make_body(b"abc")):
            got.append(chunk)
    assert got == []


async def test_short_body_is_sent_whole_then_reset(make_exchange, make_body) -> None:
    got = []
    with pytest.raises(AbortExchange):
        async for chunk in ResetFault(after_bytes=100).wrap_response_body(make_exchange(), make_body(b"ab", b"c")):
            got.append(chunk)
    assert got == [b"ab", b"c"]


async def test_without_after_bytes_body_untouched(make_exchange, make_body) -> None:
    body = make_body(b"x")
    assert ResetFault().wrap_response_body(make_exchange(), body) is body


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after_bytes": -1}, "params.after_bytes"),
        ({"after_bytes": 10, "phase": "request"}, "params.phase"),
        ({"phase": "later"}, "params.phase"),
        ({"bytes": 3}, "params.bytes"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("reset", params)
    assert [e.field for e in err.value.errors] == [field]


def test_after_bytes_with_response_phase_is_allowed() -> None:
    assert build_fault("reset", {"after_bytes": 3, "phase": "response"}) == ResetFault(after_bytes=3, phase="response")


def test_hooks_follow_the_parameters() -> None:
    assert ResetFault(after_bytes=3).hooks() == {Hook.WRAP_RESPONSE_BODY}
    assert ResetFault(phase="connection").hooks() == {Hook.ON_CONNECTION}
