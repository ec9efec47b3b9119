"""Every ML kind: registered and documented, and only 2xx JSON bodies are ever touched."""

from __future__ import annotations

from typing import Any

import pytest

from faults.base import PROCEED, BodyEdit
from faults.catalogue import build_fault, describe, kind_class, known_kinds
from tests.faults.ml.shapes import FEAST_ROWS, OIP, PATHS, raw

# A working example per kind, and a request it visibly changes.
ML = {
    "missing_features": ({}, FEAST_ROWS, "feast"),
    "default_features": ({}, FEAST_ROWS, "feast"),
    "stale_features": ({}, FEAST_ROWS, "feast"),
    "nan_tensor": ({"fraction": 1.0}, OIP, "oip"),
    "schema_drift": ({"mode": "dtype"}, OIP, "oip"),
    "wrong_shape": ({}, OIP, "oip"),
    "score_corruption": ({"mode": "invert"}, OIP, "oip"),
    "model_version_skew": ({"version": "0"}, OIP, "oip"),
}
STREAM = {"stream": {"first_event_delay_ms": 100}, "crossed_responses": {"buffer_size": 4}}


@pytest.mark.parametrize("kind", sorted([*ML, *STREAM]))
def test_registered_documented_and_round_trips(kind: str) -> None:
    assert kind in known_kinds()
    params = ML[kind][0] if kind in ML else STREAM[kind]
    fault = build_fault(kind, params)
    assert isinstance(fault, kind_class(kind))
    assert build_fault(kind, fault.params()) == fault
    entry = describe(type(fault))
    assert entry["summary"] and set(entry["params"]) == set(fault.params())
    assert "Why realistic" in entry["doc"]


@pytest.mark.parametrize("kind", sorted(ML))
async def test_changes_the_body_and_declares_a_rewrite(apply: Any, kind: str) -> None:
    params, shape, path = ML[kind]
    body = raw(shape)
    out = await apply(kind, params, body, path=PATHS[path])
    assert out.body != body
    assert out.edit == BodyEdit.REWRITE  # so the proxy frames the new body (the fault leaves the headers alone)
    assert out.ex.response_headers["Content-Length"] == str(len(body))
    assert isinstance(out.ex.details["values_changed"], int) and out.ex.details["values_changed"] > 0


@pytest.mark.parametrize("kind", sorted(ML))
@pytest.mark.parametrize(("status", "content_type", "encoding"), [
    (500, "application/json", None), (404, "application/json", None), (200, "text/event-stream", None),
    (200, "application/json", "gzip"), (200, "image/png", None),
])
async def test_untouched_outside_2xx_json(make_exchange: Any, make_body: Any, drain: Any, kind: str,
                                          status: int, content_type: str, encoding: str | None) -> None:
    params, shape, path = ML[kind]
    body = raw(shape)
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    if encoding:
        headers["Content-Encoding"] = encoding
    fault = build_fault(kind, params)
    ex = make_exchange(path=PATHS[path], status=status, response_headers=headers)
    assert await fault.on_response(ex) is PROCEED
    streams_events = content_type == "text/event-stream" and getattr(fault, "rewrites_events", False)
    # (a kind that rewrites SSE events declares a stream edit; no event here to change)
    assert fault.response_edit(ex) == (BodyEdit.STREAM if streams_events else BodyEdit.NONE)
    assert ex.response_headers["Content-Length"] == str(len(body))
    assert b"".join(await drain(fault.wrap_response_body(ex, make_body(body[:9], body[9:])))) == body


@pytest.mark.parametrize("kind", sorted(ML))
async def test_non_json_and_empty_bodies_pass_byte_for_byte(apply: Any, kind: str) -> None:
    params, _, path = ML[kind]
    for body in (b"not json {", b"", b"\xff\xfe"):
        assert (await apply(kind, params, body, path=PATHS[path])).body == body


async def test_oversized_body_passes_untouched(apply: Any) -> None:
    from faults.ml.nan_tensor import NanTensorFault

    class Small(NanTensorFault):
        max_body_bytes = 16

    body = raw(OIP)
    out = await apply("", {}, body, path=PATHS["oip"], fault=Small(fraction=1.0))
    assert out.body == body
