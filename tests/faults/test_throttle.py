"""throttle: bandwidth pacing and dribble on a fake clock; bytes always pass intact."""

from __future__ import annotations

import pytest

from faults.base import Hook
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from faults.throttle import ThrottleFault

BODY = bytes(range(256)) * 40  # 10 240 bytes


async def test_bandwidth_total_time_and_chunks(make_exchange, make_body, drain, clock) -> None:
    fault = build_fault("throttle", {"bytes_per_s": 2048, "chunk_bytes": 512})
    out = await drain(fault.wrap_response_body(make_exchange(), make_body(BODY[:3000], BODY[3000:])))
    assert b"".join(out) == BODY
    assert max(len(c) for c in out) <= 512
    assert clock.slept == pytest.approx(len(BODY) / 2048, rel=0.01)


async def test_default_chunk_is_a_tenth_of_a_second(make_exchange, make_body, drain, clock) -> None:
    out = await drain(ThrottleFault(bytes_per_s=1000).wrap_response_body(make_exchange(), make_body(BODY[:1000])))
    assert [len(c) for c in out] == [100] * 10
    assert clock.slept == pytest.approx(1.0)


async def test_idle_time_earns_no_credit(make_exchange, drain, clock) -> None:
    async def slow_upstream():
        for _ in range(4):
            clock.advance(1.0)  # upstream takes 1 s per 100-byte chunk: slower than the cap
            yield b"x" * 100

    out = await drain(ThrottleFault(bytes_per_s=1000, chunk_bytes=100).wrap_response_body(make_exchange(), slow_upstream()))
    assert len(b"".join(out)) == 400
    # Each piece still takes its own transmission time: 100 bytes at 1000 B/s.
    assert clock.sleeps == pytest.approx([0.1] * 4)


async def test_burst_after_a_slow_start_is_still_paced(make_exchange, drain, clock) -> None:
    async def late_upstream():
        clock.advance(10.0)  # ten seconds to first byte, then everything at once
        yield b"x" * 1000

    out = await drain(ThrottleFault(bytes_per_s=100, chunk_bytes=100).wrap_response_body(make_exchange(), late_upstream()))
    assert len(b"".join(out)) == 1000
    assert clock.slept == pytest.approx(10.0)


async def test_dribble(make_exchange, make_body, drain, clock) -> None:
    fault = ThrottleFault(interval_ms=200, chunk_bytes=3)
    out = await drain(fault.wrap_response_body(make_exchange(), make_body(b"abcdefgh", b"ij")))
    assert out == [b"abc", b"def", b"gh", b"ij"]
    assert clock.sleeps == [0.2, 0.2, 0.2]


async def test_dribble_defaults_to_single_bytes(make_exchange, make_body, drain, clock) -> None:
    out = await drain(ThrottleFault(interval_ms=10).wrap_response_body(make_exchange(), make_body(b"hello")))
    assert out == [b"h", b"e", b"l", b"l", b"o"]
    assert clock.slept == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("direction", "request_paced", "response_paced"),
    [("response", False, True), ("request", True, False), ("both", True, True)],
)
async def test_direction(direction, request_paced, response_paced, make_exchange, make_body, drain, clock) -> None:
    fault = ThrottleFault(bytes_per_s=100, chunk_bytes=50, direction=direction)
    ex = make_exchange()
    req = make_body(b"q" * 100)
    assert (fault.wrap_request_body(ex, req) is not req) == request_paced
    resp = make_body(b"r" * 100)
    assert (fault.wrap_response_body(ex, resp) is not resp) == response_paced
    assert await drain(fault.wrap_request_body(ex, make_body(b"q" * 100))) == ([b"q" * 50] * 2 if request_paced else [b"q" * 100])


async def test_empty_body(make_exchange, make_body, drain, clock) -> None:
    assert await drain(ThrottleFault(bytes_per_s=10).wrap_response_body(make_exchange(), make_body(b""))) == []
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "params.bytes_per_s"),
        ({"bytes_per_s": 10, "interval_ms": 10}, "params.bytes_per_s"),
        ({"bytes_per_s": 0}, "params.bytes_per_s"),
        ({"interval_ms": -1}, "params.interval_ms"),
        ({"bytes_per_s": 10, "chunk_bytes": 0}, "params.chunk_bytes"),
        ({"bytes_per_s": 10, "direction": "up"}, "params.direction"),
        ({"rate": 10}, "params.rate"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("throttle", params)
    assert field in [e.field for e in err.value.errors]


def test_hooks() -> None:
    assert ThrottleFault(bytes_per_s=1).hooks() == {Hook.WRAP_RESPONSE_BODY}
    assert ThrottleFault(bytes_per_s=1, direction="both").hooks() == {Hook.WRAP_REQUEST_BODY, Hook.WRAP_RESPONSE_BODY}
