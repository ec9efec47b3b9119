"""down: refuse (FIN, no byte), reset (RST) or 503 with Retry-After, on every request."""

from __future__ import annotations

import json

import pytest

from faults.base import Hook, Reset, Respond
from faults.catalogue import build_fault
from faults.down import DownFault
from faults.errors import InvalidInputs


async def test_refuse_closes_without_a_byte(make_exchange) -> None:
    ex = make_exchange()
    assert await build_fault("down", {}).on_request(ex) == Reset(graceful=True)
    assert ex.details == {"mode": "refuse"}


async def test_reset_sends_rst(make_exchange) -> None:
    assert await DownFault(mode="reset").on_request(make_exchange()) == Reset(graceful=False)


@pytest.mark.parametrize("mode", ["503", 503])
async def test_503_with_retry_after(mode, make_exchange) -> None:
    ex = make_exchange()
    out = await build_fault("down", {"mode": mode, "retry_after_s": 30}).on_request(ex)
    assert ex.details == {"mode": "503", "status": 503}
    assert isinstance(out, Respond) and out.status == 503
    assert ("Retry-After", "30") in out.headers
    assert ("Content-Type", "application/json") in out.headers
    assert json.loads(out.body) == {"error": "Service Unavailable", "injected_by": "brownout"}


async def test_503_without_retry_after(make_exchange) -> None:
    out = await DownFault(mode="503").on_request(make_exchange())
    assert [k for k, _ in out.headers] == ["Content-Type"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mode": "sleep"}, "params.mode"),
        ({"mode": "503", "retry_after_s": -1}, "params.retry_after_s"),
        ({"mode": "reset", "retry_after_s": 5}, "params.retry_after_s"),
        ({"status": 503}, "params.status"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("down", params)
    assert [e.field for e in err.value.errors] == [field]


def test_hooks() -> None:
    assert DownFault().hooks() == {Hook.ON_REQUEST}  # per request: open keep-alive connections see it too
