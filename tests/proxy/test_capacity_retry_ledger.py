"""The Retry-After ledger on explicit times: what a client is told, who is who, early and polite returns, bounds."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from multidict import CIMultiDict

from proxy.retry_after import MAX_WAIT_S, RetryAfterLedger, advertised_wait_s, body_identity, header_identity


@pytest.mark.parametrize(("headers", "wait"), [
    ([("Retry-After", "5")], 5.0),
    ([("retry-after", " 1.5 ")], 1.5),
    ([("Retry-After", "5"), ("retry-after-ms", "250")], 0.25),  # the precise one wins, as SDKs read it
    ([("Retry-After", "soon")], None),
    ([("Retry-After", "-3")], None),
    ([("Retry-After", "nan")], None),
    ([("Retry-After", "99999999")], MAX_WAIT_S),
    ([("Content-Type", "application/json")], None),
])
def test_advertised_wait(headers: list[tuple[str, str]], wait: float | None) -> None:
    assert advertised_wait_s(headers) == wait


def test_an_http_date_counts_from_the_wall_clock() -> None:
    wall = 1_700_000_000.0
    assert advertised_wait_s([("Retry-After", formatdate(wall + 42, usegmt=True))], wall=wall) == pytest.approx(42)
    assert advertised_wait_s([("Retry-After", formatdate(wall - 42, usegmt=True))], wall=wall) == 0.0


def test_identity_prefers_the_idempotency_key_then_the_request_id_then_the_body() -> None:
    both = header_identity(CIMultiDict({"Idempotency-Key": "k1", "X-Request-ID": "r1"}))
    assert both == header_identity(CIMultiDict({"idempotency-key": "k1", "X-Request-ID": "r2"}))
    assert header_identity(CIMultiDict({"X-Request-ID": "r1"})) == header_identity(CIMultiDict({"x-request-id": "r1"}))
    assert header_identity(CIMultiDict({"X-Request-ID": "r1"})) != header_identity(CIMultiDict({"X-Request-ID": "r2"}))
    assert header_identity(CIMultiDict({"Accept": "*/*"})) is None
    same = body_identity("10.0.0.1", b"POST", b"/v1/x", b'{"a": 1}')
    assert same == body_identity("10.0.0.1", b"POST", b"/v1/x", b'{"a": 1}')
    for other in (body_identity("10.0.0.2", b"POST", b"/v1/x", b'{"a": 1}'), body_identity("10.0.0.1", b"PUT", b"/v1/x", b'{"a": 1}'),
                  body_identity("10.0.0.1", b"POST", b"/v1/y", b'{"a": 1}'), body_identity("10.0.0.1", b"POST", b"/v1/x", b'{"a": 2}')):
        assert other != same
    assert b"sk-" not in (header_identity(CIMultiDict({"X-Request-ID": "sk-secret"})) or b"")  # a digest, never the value


def test_early_returns_are_violations_until_the_time_passes() -> None:
    ledger = RetryAfterLedger()
    assert not ledger
    ledger.advertise(b"a", 2.0, now=100.0)
    assert ledger and ledger.arrived(b"a", 100.5) == pytest.approx(1.5)
    assert ledger.arrived(b"a", 101.999) == pytest.approx(0.001)  # still noted: each early return counts
    assert ledger.arrived(b"b", 101.0) is None  # someone else
    assert ledger.arrived(b"a", 102.0) is None  # on time: polite, and the note is done
    assert ledger.arrived(b"a", 102.1) is None and not ledger


def test_a_new_retry_after_replaces_the_old_one() -> None:
    ledger = RetryAfterLedger()
    ledger.advertise(b"a", 1.0, now=0.0)
    assert ledger.arrived(b"a", 0.2) is not None
    ledger.advertise(b"a", 1.0, now=0.2)  # the early retry was refused again: wait from now
    assert ledger.arrived(b"a", 1.1) == pytest.approx(0.1)
    assert ledger.arrived(b"a", 1.2) is None


def test_notes_are_bounded_and_passed_ones_dropped() -> None:
    ledger = RetryAfterLedger(max_notes=100)
    for i in range(1000):
        ledger.advertise(i.to_bytes(4, "big"), 60.0, now=float(i) / 1000)
    assert len(ledger) == 100 and ledger.arrived((999).to_bytes(4, "big"), 1.0) is not None
    ledger.advertise(b"late", 1.0, now=1000.0)  # an hour later: every earlier note has passed
    assert len(ledger) == 1
