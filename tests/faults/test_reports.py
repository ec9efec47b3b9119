"""What each kind reports through its view (``ex.report``): the record logs, metrics and traces get."""

from __future__ import annotations

import random
from typing import Any

import pytest

from faults.base import AbortExchange, Hook
from faults.catalogue import build_fault


async def test_latency_reports_the_delay_it_drew(make_exchange: Any, clock: Any) -> None:
    ex = make_exchange(seed=5)
    ex.hook = Hook.ON_REQUEST
    clock.t += 0.25  # the exchange started a quarter second ago
    await build_fault("latency", {"delay_ms": 100, "jitter_ms": 40}).on_request(ex)
    expected = 100 + random.Random(5).uniform(-40, 40)
    assert ex.details == {"delay_ms": round(expected, 3)}
    assert clock.sleeps == [pytest.approx(expected / 1000)]
    assert ex.effect_hook == Hook.ON_REQUEST and ex.effect_at == pytest.approx(0.25)


@pytest.mark.parametrize(("kind", "params", "details"), [
    ("error", {"status": 429}, {"status": 429}),
    ("hang", {"deadline_ms": 1500, "then": "504"}, {"deadline_ms": 1500, "then": "504", "held_ms": 1500.0}),
    ("down", {"mode": "reset"}, {"mode": "reset"}),
])
async def test_answering_kinds_report_what_they_did(make_exchange: Any, kind: str, params: dict, details: dict) -> None:
    ex = make_exchange()
    await build_fault(kind, params).on_request(ex)
    assert ex.details == details


async def test_body_kinds_report_what_they_did(make_exchange: Any, make_body: Any, drain: Any) -> None:
    ex = make_exchange(status=200, response_headers={"Content-Length": "100"})
    truncate = build_fault("truncate", {"fraction": 0.3})
    await truncate.on_response(ex)
    assert b"".join(await drain(truncate.wrap_response_body(ex, make_body(bytes(100))))) == bytes(30)
    assert ex.details == {"bytes_kept": 30, "bytes_cut": 70}

    chunked = make_exchange(status=200)
    with pytest.raises(AbortExchange):
        await drain(truncate.wrap_response_body(chunked, make_body(bytes(60), bytes(40))))
    assert chunked.details == {"bytes_kept": 30, "bytes_cut": 70}

    throttled = make_exchange()
    await drain(build_fault("throttle", {"bytes_per_s": 2048}).wrap_response_body(throttled, make_body(b"x" * 10)))
    assert throttled.details == {"bytes_per_s": 2048, "chunk_bytes": 204}
