"""truncate: exactly N bytes (or a fraction), Content-Length kept or corrected."""

from __future__ import annotations

import pytest

from faults.base import PROCEED, AbortExchange, Hook
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from faults.truncate import TruncateFault

BODY = bytes(range(100))


async def run(fault: TruncateFault, ex, body) -> tuple[bytes, bool]:
    """The proxy's view: hooks in order; returns (bytes sent, aborted)."""
    assert await fault.on_response(ex) is PROCEED
    got = b""
    try:
        async for chunk in fault.wrap_response_body(ex, body):
            got += chunk
    except AbortExchange:
        return got, True
    return got, False


@pytest.mark.parametrize("parts", [(BODY,), (BODY[:10], BODY[10:]), (BODY[:30], BODY[30:31], BODY[31:])])
async def test_after_bytes_keeps_original_length(parts, make_exchange, make_body) -> None:
    ex = make_exchange(status=200, response_headers={"Content-Length": "100"})
    got, aborted = await run(build_fault("truncate", {"after_bytes": 30}), ex, make_body(*parts))
    assert got == BODY[:30]
    assert not aborted  # the proxy closes the connection: fewer bytes than declared
    assert ex.response_headers["Content-Length"] == "100"


async def test_after_bytes_corrected_length(make_exchange, make_body) -> None:
    ex = make_exchange(status=200, response_headers={"Content-Length": "100"})
    got, aborted = await run(TruncateFault(after_bytes=30, content_length="corrected"), ex, make_body(BODY[:50], BODY[50:]))
    assert (got, aborted) == (BODY[:30], False)
    assert ex.response_headers.getall("Content-Length") == ["30"]


async def test_fraction_of_content_length(make_exchange, make_body) -> None:
    ex = make_exchange(status=200, response_headers={"Content-Length": "100"})
    got, _ = await run(TruncateFault(fraction=0.25), ex, make_body(BODY))
    assert got == BODY[:25]
    assert ex.response_headers["Content-Length"] == "100"


async def test_fraction_corrected(make_exchange, make_body) -> None:
    ex = make_exchange(status=200, response_headers={"Content-Length": "100"})
    got, _ = await run(TruncateFault(fraction=0.5, content_length="corrected"), ex, make_body(BODY[:70], BODY[70:]))
    assert got == BODY[:50]
    assert ex.response_headers["Content-Length"] == "50"


async def test_chunked_original_aborts_after_the_cut(make_exchange, make_body) -> None:
    ex = make_exchange(status=200)
    got, aborted = await run(TruncateFault(after_bytes=10), ex, make_body(BODY[:60], BODY[60:]))
    assert (got, aborted) == (BODY[:10], True)


async def test_chunked_corrected_ends_cleanly(make_exchange, make_body) -> None:
    ex = make_exchange(status=200)
    got, aborted = await run(TruncateFault(after_bytes=10, content_length="corrected"), ex, make_body(BODY))
    assert (got, aborted) == (BODY[:10], False)
    assert "Content-Length" not in ex.response_headers


async def test_chunked_fraction_buffers_to_learn_the_size(make_exchange, make_body) -> None:
    ex = make_exchange(status=200)
    got, aborted = await run(TruncateFault(fraction=0.4), ex, make_body(BODY[:33], BODY[33:66], BODY[66:]))
    assert (got, aborted) == (BODY[:40], True)


async def test_chunked_fraction_over_the_buffer_cap(make_exchange, make_body) -> None:
    ex = make_exchange(status=200)
    fault = TruncateFault(fraction=0.5, max_body_bytes=20, content_length="corrected")
    got, aborted = await run(fault, ex, make_body(BODY[:15], BODY[15:]))
    assert (got, aborted) == (BODY[:10], False)


async def test_body_shorter_than_cut_passes_whole(make_exchange, make_body) -> None:
    ex = make_exchange(status=200)
    got, aborted = await run(TruncateFault(after_bytes=500), ex, make_body(BODY[:50], BODY[50:]))
    assert (got, aborted) == (BODY, False)


async def test_zero_bytes(make_exchange, make_body) -> None:
    ex = make_exchange(status=200, response_headers={"Content-Length": "100"})
    got, _ = await run(TruncateFault(fraction=0.0, content_length="corrected"), ex, make_body(BODY))
    assert got == b""
    assert ex.response_headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "params.after_bytes"),
        ({"after_bytes": 5, "fraction": 0.5}, "params.after_bytes"),
        ({"after_bytes": -1}, "params.after_bytes"),
        ({"fraction": 1.5}, "params.fraction"),
        ({"fraction": 0.5, "content_length": "fixed"}, "params.content_length"),
        ({"fraction": 0.5, "max_body_bytes": 0}, "params.max_body_bytes"),
        ({"bytes": 5}, "params.bytes"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("truncate", params)
    assert field in [e.field for e in err.value.errors]


def test_hooks() -> None:
    assert TruncateFault(after_bytes=1).hooks() == {Hook.ON_RESPONSE, Hook.WRAP_RESPONSE_BODY}
