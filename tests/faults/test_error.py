"""error: the answer it gives, in which phase, and its parameters."""

from __future__ import annotations

import json

import pytest

from faults.base import PROCEED, Hook, Respond
from faults.catalogue import build_fault
from faults.error import ErrorFault
from faults.errors import InvalidInputs


async def test_default_is_503_json_at_request_phase(make_exchange) -> None:
    fault = build_fault("error", {})
    ex = make_exchange()
    out = await fault.on_request(ex)
    assert isinstance(out, Respond)
    assert out.status == 503
    assert json.loads(out.body) == {"error": "Service Unavailable", "injected_by": "brownout"}
    assert dict(out.headers) == {"Content-Type": "application/json"}
    assert await fault.on_response(ex) is PROCEED


async def test_status_body_and_retry_after(make_exchange) -> None:
    fault = build_fault("error", {"status": 429, "body": "slow down", "headers": {"Retry-After": 5, "X-Limit": "10"}})
    out = await fault.on_request(make_exchange())
    headers = (("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "5"), ("X-Limit", "10"))
    assert out == Respond(429, b"slow down", headers)


async def test_json_body_and_explicit_content_type(make_exchange) -> None:
    out = await ErrorFault(status=500, body='{"detail": "boom"}').on_request(make_exchange())
    assert ("Content-Type", "application/json") in out.headers
    out = await ErrorFault(status=500, body="<h1>x</h1>", content_type="text/html").on_request(make_exchange())
    assert out.headers == (("Content-Type", "text/html"),)
    out = await ErrorFault(status=500, body="x", headers={"content-type": "text/csv"}).on_request(make_exchange())
    assert out.headers == (("Content-Type", "text/csv"),)


async def test_object_body_is_sent_as_json(make_exchange) -> None:
    fault = build_fault("error", {"status": 400, "body": {"error": {"code": "invalid_request"}}})
    out = await fault.on_request(make_exchange())
    assert json.loads(out.body) == {"error": {"code": "invalid_request"}}
    assert out.headers == (("Content-Type", "application/json"),)


async def test_unknown_status_reason_still_json(make_exchange) -> None:
    out = await ErrorFault(status=599).on_request(make_exchange())
    assert json.loads(out.body) == {"error": "injected error", "injected_by": "brownout"}


async def test_response_phase_replaces_upstream_answer(make_exchange) -> None:
    fault = ErrorFault(status=500, phase="response")
    ex = make_exchange(status=200, response_headers={"Content-Length": "2"})
    assert await fault.on_request(ex) is PROCEED
    out = await fault.on_response(ex)
    assert isinstance(out, Respond) and out.status == 500


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": 99}, "params.status"),
        ({"status": 600}, "params.status"),
        ({"status": "teapot"}, "params.status"),
        ({"body": 5}, "params.body"),
        ({"headers": {"Bad Header": "1"}}, "params.headers"),
        ({"headers": {"Content-Length": "1"}}, "params.headers"),
        ({"headers": {"Retry-After": [1]}}, "params.headers"),
        ({"headers": {"Retry-After": True}}, "params.headers"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "params.headers"),
        ({"content_type": " "}, "params.content_type"),
        ({"phase": "connection"}, "params.phase"),
        ({"retry_after": 5}, "params.retry_after"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("error", params)
    assert [e.field for e in err.value.errors] == [field]


def test_hooks_and_params() -> None:
    assert ErrorFault().hooks() == {Hook.ON_REQUEST} and ErrorFault(phase="response").hooks() == {Hook.ON_RESPONSE}
    assert build_fault("error", {"headers": {"Retry-After": 1}}).params()["headers"] == {"Retry-After": 1}
