"""proxy/recording/capture.py on its own: what a capture keeps and hands on, and that it never raises.

The end-to-end tests (test_recording_e2e.py, test_recording_limits.py) record through a real
proxy; these pin the capture's contract with a channel that only collects what it is given.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.recording.capture import Recorder, Sampler
from proxy.recording.channel import RecordingMetrics


class Collecting:
    """The writer channel's ``put``, collecting; or failing, as a bug in it would."""

    def __init__(self, fail: bool = False) -> None:
        self.items: list[tuple[str, tuple[Any, ...], int]] = []
        self.fail = fail

    def put(self, route: str, item: tuple[Any, ...], size: int) -> None:
        if self.fail:
            raise RuntimeError("the channel broke")
        self.items.append((route, item, size))


def recorder(channel: Collecting, *samples: float, max_body: int = 1024) -> Recorder:
    rec = Recorder("api", channel, RecordingMetrics(), max_body)  # type: ignore[arg-type]
    rec.samplers = tuple(Sampler(f"rec{i}", s, random.Random(i)) for i, s in enumerate(samples))
    return rec


def test_a_capture_hands_on_the_exchange_as_the_client_saw_it() -> None:
    channel = Collecting()
    headers = [(b"Host", b"api"), (b"Content-Type", b"application/json")]
    capture = recorder(channel, 1.0, 1.0).capture("POST", b"/predict?x=1", headers)
    assert capture is not None
    body = b'{"n": 1}'
    assert capture.request_body(body) is body  # unchanged, kept by reference
    capture.response(200, [(b"Content-Length", b"12")], b'{"score": 1}')
    capture.response_piece(b"")  # empty pieces are not kept
    capture.finish(0.0125, ("f1",))
    [(route, item, size)] = channel.items
    ids, method, target, sent, request, ts, faults, status, response_headers, response, latency_ms = item
    assert (route, ids, method, target, faults, status) == ("api", ("rec0", "rec1"), "POST", "/predict?x=1", ("f1",), 200)
    assert sent is headers and request == [body] and response == [b'{"score": 1}']
    assert response_headers == [(b"Content-Length", b"12")] and latency_ms == pytest.approx(12.5)
    assert ts > 1.7e9 and size >= len(body) + 12


async def test_a_streamed_request_body_passes_through_and_is_kept_piece_by_piece() -> None:
    channel = Collecting()
    capture = recorder(channel, 1.0).capture("POST", b"/up", [])
    assert capture is not None

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"ab", b"", b"cd"):
            yield piece

    teed = capture.request_body(pieces())
    assert not isinstance(teed, bytes) and teed is not None
    assert [p async for p in teed] == [b"ab", b"", b"cd"]
    capture.finish(0.001, ())
    assert channel.items[0][1][4] == [b"ab", b"cd"]


def test_an_exchange_over_max_body_is_skipped_whole_and_counted() -> None:
    channel = Collecting()
    rec = recorder(channel, 1.0, max_body=10)
    capture = rec.capture("POST", b"/big", [])
    assert capture is not None
    capture.request_body(b"123456")
    capture.response(200, [], b"7890123")  # 13 bytes in all: over 10
    capture.finish(0.001, ())
    assert channel.items == [] and rec.metrics.dropped == {("api", "too_large"): 1}


def test_a_failing_hand_off_is_logged_never_raised_into_the_exchange() -> None:
    capture = recorder(Collecting(fail=True), 1.0).capture("GET", b"/", [])
    assert capture is not None
    capture.response(200, [], b"ok")
    with capture_logs() as logs:
        capture.finish(0.001, ())  # no exception reaches the data path
    assert [e["event"] for e in logs] == ["recording_capture_failed"] and logs[0]["route"] == "api"


def test_sampling_draws_per_recording_and_every_exchange_at_one() -> None:
    rec = recorder(Collecting(), 0.0)
    assert all(rec.capture("GET", b"/", []) is None for _ in range(100))  # sample 0: never
    channel = Collecting()
    rec = recorder(channel, 0.25, 1.0)
    for _ in range(2000):
        capture = rec.capture("GET", b"/", [])
        assert capture is not None  # the 1.0 recording takes every exchange
        capture.finish(0.001, ())
    kept = [item[0] for _, item, _ in channel.items]
    assert len(kept) == 2000 and all("rec1" in ids for ids in kept)
    quarter = sum("rec0" in ids for ids in kept)
    assert 400 <= quarter <= 600, quarter  # ~500 of 2,000 at 0.25 (seeded)
