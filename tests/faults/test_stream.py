"""stream: TTFT, pacing, stall, coalescing, cuts, finish_reason, in-band errors, token corruption."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from faults.base import PROCEED, BodyEdit
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from faults.sse import EventSplitter, parse


def chunk(content: str | None = None, finish: str | None = None, role: bool = False) -> bytes:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    doc = {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


TOKENS = ["The", " answer", " is", " 42", "."]
UPSTREAM = [chunk(role=True), *[chunk(t) for t in TOKENS], chunk(finish="stop"), b"data: [DONE]\n\n"]
RAW = b"".join(UPSTREAM)


async def run(params: dict[str, Any], make_exchange: Any, clock: Any, *, body: bytes = RAW, split: int = 13,
              content_type: str = "text/event-stream", seed: int = 1) -> tuple[list[tuple[float, bytes]], Any]:
    """The writes the client gets, each with the virtual time it was sent at."""
    fault = build_fault("stream", params)
    ex = make_exchange(seed=seed, status=200, response_headers={"Content-Type": content_type,
                                                                "Content-Length": str(len(body))})
    assert await fault.on_response(ex) is PROCEED

    async def upstream() -> Any:
        for i in range(0, len(body), split):  # chunks that ignore event boundaries
            yield body[i:i + split]

    writes = []
    async for out in fault.wrap_response_body(ex, upstream()):
        writes.append((clock.t - clock.start, out))
    return writes, ex


def events_of(writes: list[tuple[float, bytes]]) -> list[Any]:
    return [parse(raw) for raw in EventSplitter().feed(b"".join(out for _, out in writes))]


def contents(writes: list[tuple[float, bytes]]) -> list[str]:
    out = []
    for event in events_of(writes):
        doc = event.json()
        if doc and doc.get("choices") and "content" in doc["choices"][0]["delta"]:
            out.append(doc["choices"][0]["delta"]["content"])
    return out


async def test_first_event_delay_only_delays_the_start(make_exchange: Any, clock: Any) -> None:
    writes, ex = await run({"first_event_delay_ms": 300}, make_exchange, clock)
    assert [t for t, _ in writes] == [pytest.approx(0.3)] * len(UPSTREAM)
    assert [out for _, out in writes] == UPSTREAM  # re-framed per event, each byte for byte
    assert ex.response_headers["Content-Length"] == str(len(RAW))
    assert build_fault("stream", {"first_event_delay_ms": 300}).response_edit(ex) == BodyEdit.NONE  # timing only
    assert build_fault("stream", {"cut_after_events": 3}).response_edit(ex) == BodyEdit.STREAM  # new bytes
    assert ex.details == {"paused_ms": 300.0}


async def test_pacing_and_jitter(make_exchange: Any, clock: Any) -> None:
    writes, _ = await run({"event_interval_ms": 50}, make_exchange, clock)
    assert [t for t, _ in writes] == pytest.approx([0.05 * i for i in range(len(UPSTREAM))])
    clock.t = clock.start
    jittered, _ = await run({"event_interval_ms": 50, "interval_jitter_ms": 20}, make_exchange, clock)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(jittered)]
    assert all(0.05 <= g <= 0.07 for g in gaps) and len(set(gaps)) > 1


async def test_stall_after_n_events(make_exchange: Any, clock: Any) -> None:
    writes, _ = await run({"stall_after_events": 3, "stall_ms": 2000}, make_exchange, clock)
    times = [t for t, _ in writes]
    assert times[:3] == [0, 0, 0] and all(t == pytest.approx(2.0) for t in times[3:])
    assert clock.sleeps == [2.0]


async def test_coalesce_bursts(make_exchange: Any, clock: Any) -> None:
    writes, _ = await run({"coalesce": 3}, make_exchange, clock)
    assert [out for _, out in writes] == [b"".join(UPSTREAM[0:3]), b"".join(UPSTREAM[3:6]), b"".join(UPSTREAM[6:])]


@pytest.mark.parametrize("keep_done", [False, True])
async def test_cut_after_n_events(make_exchange: Any, clock: Any, keep_done: bool) -> None:
    writes, _ = await run({"cut_after_events": 3, "keep_done": keep_done}, make_exchange, clock)
    events = events_of(writes)
    assert contents(writes) == ["The", " answer"]
    assert [e.is_done for e in events] == [False, False, False] + ([True] if keep_done else [])
    assert all((e.json() or {}).get("choices", [{}])[0].get("finish_reason") is None for e in events)


async def test_drop_finish_reason(make_exchange: Any, clock: Any) -> None:
    writes, _ = await run({"drop_finish_reason": True}, make_exchange, clock)
    events = events_of(writes)
    assert events[-1].is_done and contents(writes) == TOKENS
    assert all(e.json()["choices"][0]["finish_reason"] is None for e in events[:-1])
    assert [out for _, out in writes][:6] == UPSTREAM[:6]  # untouched events keep their bytes


@pytest.mark.parametrize(("style", "keep_done"), [("data", False), ("event", True)])
async def test_in_band_error_event(make_exchange: Any, clock: Any, style: str, keep_done: bool) -> None:
    params = {"error_after_events": 2, "error_message": "CUDA out of memory", "error_style": style, "keep_done": keep_done}
    writes, _ = await run(params, make_exchange, clock)
    events = events_of(writes)
    assert contents(writes) == ["The"]
    error = events[2]
    assert error.json() == {"error": {"message": "CUDA out of memory", "type": "server_error", "code": 500}}
    assert error.event == ("error" if style == "event" else None)
    assert [e.is_done for e in events[3:]] == ([True] if keep_done else [])


async def test_error_before_any_event(make_exchange: Any, clock: Any) -> None:
    writes, _ = await run({"error_after_events": 0}, make_exchange, clock)
    assert [e.json()["error"]["message"] for e in events_of(writes)] == ["upstream inference error"]


async def test_corrupt_tokens(make_exchange: Any, clock: Any) -> None:
    writes, _ = await run({"corrupt_tokens": 1.0}, make_exchange, clock)
    got = contents(writes)
    assert len(got) == len(TOKENS) and all(a != b for a, b in zip(got, TOKENS, strict=True))
    assert got[3].startswith(" ") and got[3][1:].isdigit()  # digits flipped, not replaced
    assert any(not c.isascii() for c in "".join(got))
    again, _ = await run({"corrupt_tokens": 0.4}, make_exchange, clock, seed=7)
    same, _ = await run({"corrupt_tokens": 0.4}, make_exchange, clock, seed=7)
    assert [o for _, o in again] == [o for _, o in same]  # seeded
    hit = 0
    for seed in range(20):
        writes, _ = await run({"corrupt_tokens": 0.4}, make_exchange, clock, seed=seed)
        hit += sum(a != b for a, b in zip(contents(writes), TOKENS, strict=True))
    assert 0.2 < hit / (20 * len(TOKENS)) < 0.6


async def test_completions_text_is_corrupted_too(make_exchange: Any, clock: Any) -> None:
    body = b'data: {"object": "text_completion", "choices": [{"text": "hello", "finish_reason": null}]}\n\n'
    writes, _ = await run({"corrupt_tokens": 1.0}, make_exchange, clock, body=body)
    assert events_of(writes)[0].json()["choices"][0]["text"] != "hello"


async def test_not_an_event_stream_passes_through(make_exchange: Any, clock: Any) -> None:
    writes, ex = await run({"cut_after_events": 1, "first_event_delay_ms": 500}, make_exchange, clock,
                           content_type="application/json")
    assert b"".join(o for _, o in writes) == RAW and clock.sleeps == []
    assert ex.response_headers["Content-Length"] == str(len(RAW))


async def test_partial_last_event_is_forwarded(make_exchange: Any, clock: Any) -> None:
    body = RAW + b"data: trailing"
    writes, _ = await run({"first_event_delay_ms": 10}, make_exchange, clock, body=body)
    assert b"".join(o for _, o in writes) == body


@pytest.mark.parametrize(("params", "field"), [
    ({}, "params.first_event_delay_ms"),
    ({"first_event_delay_ms": -1}, "params.first_event_delay_ms"),
    ({"stall_after_events": 2}, "params.stall_ms"),
    ({"stall_ms": 100}, "params.stall_ms"),
    ({"coalesce": 0}, "params.coalesce"),
    ({"cut_after_events": -1}, "params.cut_after_events"),
    ({"corrupt_tokens": 2}, "params.corrupt_tokens"),
    ({"error_style": "loud", "error_after_events": 1}, "params.error_style"),
    ({"ttft_ms": 5}, "params.ttft_ms"),
])
def test_validation_names_the_parameter(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("stream", params)
    assert field in [e.field for e in err.value.errors]


async def test_compressed_or_failed_streams_pass_through(make_exchange: Any, make_body: Any, drain: Any) -> None:
    fault = build_fault("stream", {"cut_after_events": 1})
    for status, headers in [(200, {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}),
                            (500, {"Content-Type": "text/event-stream"})]:
        ex = make_exchange(status=status, response_headers=headers)
        await fault.on_response(ex)
        assert b"".join(await drain(fault.wrap_response_body(ex, make_body(RAW)))) == RAW
