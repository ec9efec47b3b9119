"""rate_limit on a fake clock: 429s with OpenAI's headers and body, keys, token settlement, PATCH, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faults.base import PROCEED, Hook, Respond
from faults.catalogue import build_fault, build_match, check_match
from faults.errors import InvalidInput, InvalidInputs


def make(params: dict[str, Any]) -> tuple[Any, Any]:
    fault = build_fault("rate_limit", params)
    return fault, fault.new_state()


async def admit(fault: Any, state: Any, make_exchange: Any, **kw: Any) -> tuple[Any, Any]:
    ex = make_exchange(state=state, **kw)
    return await fault.on_request(ex), ex


async def test_429_with_retry_after_openai_headers_and_body(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 600, "burst": 3})
    outcomes = [(await admit(fault, state, make_exchange))[0] for _ in range(4)]
    assert outcomes[:3] == [PROCEED] * 3
    refused = outcomes[3]
    assert isinstance(refused, Respond) and refused.status == 429
    headers = dict(refused.headers)
    assert headers["Retry-After"] == "1"  # 0.1 s until a request fits, rounded up
    assert headers["x-ratelimit-limit-requests"] == "600"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "300ms"  # 3 requests at 10/s
    assert headers["Content-Type"] == "application/json"
    error = json.loads(refused.body)["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded" and error["param"] is None
    assert "Limit 600" in error["message"] and "100ms" in error["message"]


async def test_retry_after_is_whole_seconds_until_room(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 6, "burst": 2})  # one per 10 s
    for _ in range(2):
        await admit(fault, state, make_exchange)
    clock.advance(2.5)
    refused, ex = await admit(fault, state, make_exchange)
    assert dict(refused.headers)["Retry-After"] == "8"  # 7.5 s, rounded up
    assert dict(refused.headers)["x-ratelimit-reset-requests"] == "17.5s"
    assert ex.details == {"status": 429, "rejected": "requests", "retry_after_s": 8}
    clock.advance(7.5)
    assert (await admit(fault, state, make_exchange))[0] is PROCEED


async def test_admitted_answers_carry_the_headers_unless_told_not_to(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 600, "burst": 5})
    outcome, ex = await admit(fault, state, make_exchange)
    ex.status = 200
    assert Hook.ON_RESPONSE in fault.hooks() and await fault.on_response(ex) is PROCEED
    assert ex.response_headers["x-ratelimit-remaining-requests"] == "4"
    assert ex.response_headers["x-ratelimit-limit-requests"] == "600"
    quiet, _ = make({"requests_per_minute": 600, "ratelimit_headers": "rejected"})
    assert quiet.hooks() == {Hook.ON_REQUEST}
    bare, bare_state = make({"requests_per_minute": 60, "burst": 1, "ratelimit_headers": "none", "retry_after": False})
    await admit(bare, bare_state, make_exchange)
    refused, _ = await admit(bare, bare_state, make_exchange)
    assert [name for name, _ in refused.headers] == ["Content-Type"]


async def test_custom_status_and_body(make_exchange: Any, clock: Any) -> None:
    for body, content_type, raw in [({"message": "slow down"}, "application/json", b'{"message": "slow down"}'),
                                    ("slow down", "text/plain; charset=utf-8", b"slow down")]:
        fault, state = make({"requests_per_minute": 60, "burst": 1, "status": 503, "body": body})
        await admit(fault, state, make_exchange)
        refused, _ = await admit(fault, state, make_exchange)
        assert refused.status == 503 and refused.body == raw and dict(refused.headers)["Content-Type"] == content_type


async def test_keys_by_header_value_hashed_never_stored(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 60, "burst": 1, "key": "header:Authorization"})
    alice = {"Authorization": "Bearer sk-alice-secret"}
    bob = {"Authorization": "Bearer sk-bob-secret"}
    assert (await admit(fault, state, make_exchange, request_headers=alice))[0] is PROCEED
    assert (await admit(fault, state, make_exchange, request_headers=bob))[0] is PROCEED
    assert isinstance((await admit(fault, state, make_exchange, request_headers=alice))[0], Respond)
    assert (await admit(fault, state, make_exchange))[0] is PROCEED  # no header: one shared budget of its own
    assert isinstance((await admit(fault, state, make_exchange))[0], Respond)
    keys = list(state.buckets.pairs)
    assert len(keys) == 3 and "" in keys
    assert not any("sk-" in key or "alice" in key for key in keys)


async def test_keys_by_client_address(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 60, "burst": 1, "key": "client"})
    assert (await admit(fault, state, make_exchange, client="10.0.0.1"))[0] is PROCEED
    assert (await admit(fault, state, make_exchange, client="10.0.0.2"))[0] is PROCEED
    assert isinstance((await admit(fault, state, make_exchange, client="10.0.0.1"))[0], Respond)


async def test_global_key_is_one_budget_for_all(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 60, "burst": 1})
    assert (await admit(fault, state, make_exchange, client="10.0.0.1"))[0] is PROCEED
    assert isinstance((await admit(fault, state, make_exchange, client="10.0.0.2"))[0], Respond)


@pytest.mark.parametrize(("body", "reserved"), [({"max_tokens": 300}, 300), ({"max_completion_tokens": 200}, 200),
                                                ({"messages": []}, 1024), (None, 1024), ({"max_tokens": "9"}, 1024)])
async def test_reservation_from_max_tokens(make_exchange: Any, clock: Any, body: Any, reserved: int) -> None:
    fault, state = make({"tokens_per_minute": 60_000, "burst_tokens": 5000})
    assert fault.needs_request_json()
    outcome, ex = await admit(fault, state, make_exchange, request_json=body)
    assert outcome is PROCEED
    assert state.buckets.pairs[""].tokens.level == pytest.approx(5000 - reserved)
    assert state.reservations[ex].tokens == reserved


def usage_json(total: int) -> bytes:
    return json.dumps({"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 10,
                                                                               "completion_tokens": total - 10,
                                                                               "total_tokens": total}}).encode()


def usage_stream(total: int) -> list[bytes]:
    events = [b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n',
              b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":' + str(total - 5).encode()
              + b',"total_tokens":' + str(total).encode() + b'}}\n\n', b"data: [DONE]\n\n"]
    raw = b"".join(events)
    return [raw[i:i + 7] for i in range(0, len(raw), 7)]  # split anywhere, as TCP may


@pytest.mark.parametrize("kind", ["json", "sse"])
async def test_tokens_are_settled_against_usage(make_exchange: Any, make_body: Any, drain: Any, clock: Any,
                                                kind: str) -> None:
    fault, state = make({"tokens_per_minute": 6_000, "burst_tokens": 1000})  # 100 tokens/s
    outcome, ex = await admit(fault, state, make_exchange, request_json={"max_tokens": 400})
    assert outcome is PROCEED and state.buckets.pairs[""].tokens.level == pytest.approx(600)
    ex.status = 200
    if kind == "json":
        ex.response_headers["Content-Type"] = "application/json"
        parts = [usage_json(150)[:20], usage_json(150)[20:]]
    else:
        ex.response_headers["Content-Type"] = "text/event-stream"
        parts = usage_stream(150)
    assert b"".join(await drain(fault.wrap_response_body(ex, make_body(*parts)))) == b"".join(parts)  # untouched
    fault.on_exchange_end(ex)
    assert state.buckets.pairs[""].tokens.level == pytest.approx(850)  # 400 reserved, 150 used: 250 back
    assert ex.details == {"tokens_reserved": 400, "tokens_used": 150}
    assert state.reservations == {}

    outcome, ex = await admit(fault, state, make_exchange, request_json={"max_tokens": 100})
    ex.status = 200
    ex.response_headers["Content-Type"] = "application/json"
    await drain(fault.wrap_response_body(ex, make_body(usage_json(1350))))
    fault.on_exchange_end(ex)  # used far more than reserved: the rest is charged, a debt
    assert state.buckets.pairs[""].tokens.level == pytest.approx(850 - 1350)
    refused, _ = await admit(fault, state, make_exchange, request_json={"max_tokens": 100})
    assert isinstance(refused, Respond)
    assert dict(refused.headers)["Retry-After"] == "6"  # (100 + 500) / 100 tokens/s
    assert json.loads(refused.body)["error"]["type"] == "tokens"
    assert dict(refused.headers)["x-ratelimit-limit-tokens"] == "6000"


async def test_without_usage_the_reservation_stands(make_exchange: Any, make_body: Any, drain: Any, clock: Any) -> None:
    fault, state = make({"tokens_per_minute": 6_000, "burst_tokens": 1000})
    outcome, ex = await admit(fault, state, make_exchange, request_json={"max_tokens": 400})
    ex.status = 502
    fault.on_exchange_end(ex)  # upstream failed, or the client left: no usage seen
    assert state.buckets.pairs[""].tokens.level == pytest.approx(600) and state.reservations == {}


async def test_a_refused_request_reserves_nothing(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 60, "burst": 1, "tokens_per_minute": 6000})
    await admit(fault, state, make_exchange, request_json={"max_tokens": 10})
    refused, ex = await admit(fault, state, make_exchange, request_json={"max_tokens": 10})
    assert isinstance(refused, Respond) and ex not in state.reservations
    fault.on_exchange_end(ex)  # runs for every selected fault: nothing to settle
    assert state.buckets.pairs[""].tokens.level == pytest.approx(90)


async def test_a_patch_keeps_the_budget_and_applies_new_rates_from_then(make_exchange: Any, clock: Any) -> None:
    fault, state = make({"requests_per_minute": 60, "burst": 5})  # 1/s
    for _ in range(5):
        await admit(fault, state, make_exchange)
    clock.advance(2.0)
    patched = build_fault("rate_limit", {**fault.params(), "requests_per_minute": 600, "burst": 20})
    patched.reconfigure_state(state)  # as FaultStore.replace_fault does
    assert state.buckets.pairs[""].requests.level == pytest.approx(2.0)  # kept, refilled at the old rate
    clock.advance(0.5)  # then 10/s: 2 + 5 = 7
    outcomes = [(await admit(patched, state, make_exchange))[0] for _ in range(8)]
    assert outcomes[:7] == [PROCEED] * 7 and isinstance(outcomes[7], Respond)
    tokens = build_fault("rate_limit", {**patched.params(), "tokens_per_minute": 600})
    tokens.reconfigure_state(state)
    clock.advance(1.0)
    await admit(tokens, state, make_exchange, request_json={"max_tokens": 5})
    assert len(state.reservations) == 1
    patched.reconfigure_state(state)  # the token budget is gone, and with it the end hook: nothing may linger
    assert state.reservations == {}
    rekeyed = build_fault("rate_limit", {**patched.params(), "key": "client"})
    rekeyed.reconfigure_state(state)  # budgets by another key mean nothing: they start afresh
    assert len(state.buckets) == 0


@pytest.mark.parametrize("match", [{"probability": 0.5}, {"first_n": 3}, {"every_nth": 2}, {"max_injections": 9}])
@pytest.mark.parametrize("kind", ["rate_limit", "concurrency_limit"])
def test_stateful_kinds_refuse_count_and_probability_matches(kind: str, match: dict[str, Any]) -> None:
    fault = build_fault(kind, {"requests_per_minute": 60} if kind == "rate_limit" else {})
    with pytest.raises(InvalidInput) as err:
        check_match(fault, build_match(match))
    assert err.value.field == f"match.{next(iter(match))}" and "budget" in err.value.message
    check_match(fault, build_match({"path": "/v1/*", "methods": ["POST"], "headers": {"x-tier": "free"},
                                    "probability": 1.0}))
    check_match(build_fault("error", {}), build_match(match))  # stateless kinds take them


@pytest.mark.parametrize(("params", "field"), [
    ({}, "params.requests_per_minute"),
    ({"requests_per_minute": 0}, "params.requests_per_minute"),
    ({"requests_per_minute": -5}, "params.requests_per_minute"),
    ({"tokens_per_minute": 1e12}, "params.tokens_per_minute"),
    ({"requests_per_minute": 60, "burst": 0}, "params.burst"),
    ({"tokens_per_minute": 60, "burst": 3}, "params.burst"),
    ({"requests_per_minute": 60, "burst_tokens": 3}, "params.burst_tokens"),
    ({"requests_per_minute": 60, "key": "user"}, "params.key"),
    ({"requests_per_minute": 60, "key": "header:bad name"}, "params.key"),
    ({"requests_per_minute": 60, "status": 200}, "params.status"),
    ({"requests_per_minute": 60, "max_keys": 0}, "params.max_keys"),
    ({"requests_per_minute": 60, "body": 5}, "params.body"),
    ({"requests_per_minute": 60, "ratelimit_headers": "sometimes"}, "params.ratelimit_headers"),
    ({"requests_per_minute": float("inf")}, "params.requests_per_minute"),
    ({"requests_per_minute": 60, "rpm": 5}, "params.rpm"),
])
def test_validation_names_the_parameter(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        build_fault("rate_limit", params)
    errors = err.value.errors if isinstance(err.value, InvalidInputs) else [err.value]
    assert field in [e.field for e in errors], errors
