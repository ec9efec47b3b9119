"""corrupt: JSON ops give the expected document; no change means byte-identical; raw flips."""

from __future__ import annotations

import json
import math
import random

import pytest

from faults.base import PROCEED, BodyEdit, Hook
from faults.catalogue import build_fault
from faults.corrupt import CorruptFault, flip_bytes
from faults.errors import InvalidInputs

DOC = {"predictions": [[0.1, 0.9], [0.7, 0.3]], "model": "m", "version": "3", "meta": {"latency_ms": 12, "ok": True}}
# Upstream's own spacing: re-serialising would change it, so "unchanged" must mean these bytes.
RAW = (
    b'{ "predictions": [[0.1, 0.9], [0.7, 0.3]], "model": "m", "version": "3",\n'
    b'  "meta": {"latency_ms": 12, "ok": true} }'
)


async def corrupt(params: dict, make_exchange, make_body, drain, raw: bytes = RAW, seed: int = 1) -> bytes:
    fault = build_fault("corrupt", params)
    headers = {"Content-Length": str(len(raw)), "Content-Type": "application/json"}
    ex = make_exchange(seed=seed, status=200, response_headers=headers)
    assert await fault.on_response(ex) is PROCEED
    return b"".join(await drain(fault.wrap_response_body(ex, make_body(raw[:17], raw[17:]))))


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ({"op": "set", "path": "$.model", "value": {"x": [1]}}, {**DOC, "model": {"x": [1]}}),
        ({"op": "remove", "path": "$.meta.ok"}, {**DOC, "meta": {"latency_ms": 12}}),
        ({"op": "null", "path": "$.predictions[0]"}, {**DOC, "predictions": [None, [0.7, 0.3]]}),
        ({"op": "scale", "path": "$.predictions[*][1]", "factor": 10}, {**DOC, "predictions": [[0.1, 9.0], [0.7, 3.0]]}),
        ({"op": "scale", "path": "$.meta.latency_ms", "factor": 2}, {**DOC, "meta": {"latency_ms": 24, "ok": True}}),
        ({"op": "change_type", "path": "$.version"}, {**DOC, "version": 3}),
        ({"op": "change_type", "path": "$.meta.latency_ms"}, {**DOC, "meta": {"latency_ms": "12", "ok": True}}),
        ({"op": "change_type", "path": "$.model"}, {**DOC, "model": None}),
        ({"op": "change_type", "path": "$.meta.ok"}, {**DOC, "meta": {"latency_ms": 12, "ok": "true"}}),
        ({"op": "change_type", "path": "$.predictions[1]"}, {**DOC, "predictions": [[0.1, 0.9], "[0.7, 0.3]"]}),
    ],
)
async def test_json_ops(op, expected, make_exchange, make_body, drain) -> None:
    out = await corrupt({"ops": [op]}, make_exchange, make_body, drain)
    assert json.loads(out) == expected


async def test_nan_and_infinity_are_bare_tokens(make_exchange, make_body, drain) -> None:
    params = {"ops": [{"op": "nan", "path": "$.predictions[0][0]"}, {"op": "infinity", "path": "$.predictions[1][*]"}]}
    out = await corrupt(params, make_exchange, make_body, drain)
    assert b"[[NaN,0.9],[Infinity,Infinity]]" in out
    doc = json.loads(out)  # Python clients parse them; strict parsers choke, which is the point
    assert math.isnan(doc["predictions"][0][0]) and doc["predictions"][1] == [math.inf, math.inf]


async def test_shuffle_permutes_with_the_seeded_rng(make_exchange, make_body, drain) -> None:
    raw = json.dumps({"scores": list(range(20))}).encode()
    params = {"ops": [{"op": "shuffle", "path": "$.scores"}]}
    a = json.loads(await corrupt(params, make_exchange, make_body, drain, raw=raw, seed=5))["scores"]
    b = json.loads(await corrupt(params, make_exchange, make_body, drain, raw=raw, seed=5))["scores"]
    assert a == b != list(range(20))
    assert sorted(a) == list(range(20))


async def test_shuffle_of_two_always_changes(make_exchange, make_body, drain) -> None:
    raw = b'{"labels": ["cat", "dog"]}'
    for seed in range(10):
        out = await corrupt({"ops": [{"op": "shuffle", "path": "$.labels"}]}, make_exchange, make_body, drain, raw=raw, seed=seed)
        assert json.loads(out) == {"labels": ["dog", "cat"]}


@pytest.mark.parametrize(
    "op",
    [
        {"op": "null", "path": "$.missing"},
        {"op": "remove", "path": "$.predictions[9]"},
        {"op": "set", "path": "$.model", "value": "m"},
        {"op": "scale", "path": "$.model", "factor": 3},
        {"op": "scale", "path": "$.meta.latency_ms", "factor": 1},
        {"op": "shuffle", "path": "$.meta"},
    ],
)
async def test_nothing_changed_means_byte_identical(op, make_exchange, make_body, drain) -> None:
    assert await corrupt({"ops": [op]}, make_exchange, make_body, drain) == RAW


async def test_json_mode_declares_a_rewrite_bytes_mode_none(make_exchange) -> None:
    ex = make_exchange(response_headers={"Content-Length": "10", "Content-Type": "application/json"})
    assert build_fault("corrupt", {"ops": [{"op": "null", "path": "$.a"}]}).response_edit(ex) == BodyEdit.REWRITE
    assert build_fault("corrupt", {"mode": "bytes"}).response_edit(ex) == BodyEdit.NONE
    assert ex.response_headers["Content-Length"] == "10"  # the proxy frames the new body, not the fault


async def test_non_json_body_gets_bytes_flipped(make_exchange, make_body, drain) -> None:
    raw = b"\x1f\x8b gzip or text, not JSON"
    out = await corrupt({"ops": [{"op": "null", "path": "$.a"}], "flips": 3}, make_exchange, make_body, drain, raw=raw)
    assert len(out) == len(raw)
    assert sum(a != b for a, b in zip(out, raw, strict=True)) == 3


async def test_bytes_mode_flips_and_keeps_length(make_exchange, make_body, drain) -> None:
    fault = build_fault("corrupt", {"mode": "bytes", "flips": 5})
    ex = make_exchange(response_headers={"Content-Length": str(len(RAW))})
    out = b"".join(await drain(fault.wrap_response_body(ex, make_body(RAW))))
    assert len(out) == len(RAW) and sum(a != b for a, b in zip(out, RAW, strict=True)) == 5
    assert ex.details == {"bytes_flipped": 5}


async def test_over_max_body_passes_unchanged_in_its_chunks(make_exchange, make_body, drain) -> None:
    fault = CorruptFault(mode="bytes", max_body_bytes=10)
    parts = (b"0123456", b"789abc", b"def")
    assert await drain(fault.wrap_response_body(make_exchange(), make_body(*parts))) == list(parts)


async def test_empty_body_stays_empty(make_exchange, make_body, drain) -> None:
    assert await drain(CorruptFault(mode="bytes").wrap_response_body(make_exchange(), make_body())) == []


async def test_request_direction_rewrites_the_upstream_body(make_exchange, make_body, drain) -> None:
    fault = build_fault("corrupt", {"direction": "request", "ops": [{"op": "nan", "path": "$.instances[0][1]"}]})
    ex = make_exchange(request_headers={"Content-Length": "30"}, response_headers={"Content-Length": "5"})
    assert fault.hooks() == {Hook.WRAP_REQUEST_BODY} and fault.request_edit(ex) == BodyEdit.REWRITE
    out = b"".join(await drain(fault.wrap_request_body(ex, make_body(b'{"instances": [[1.0, 2.0]]}'))))
    assert out == b'{"instances":[[1.0,NaN]]}'
    assert ex.details == {"ops_applied": 1}
    body = make_body(b"{}")
    assert fault.wrap_response_body(ex, body) is body


def test_flip_bytes_is_seeded() -> None:
    assert flip_bytes(b"abcdef", 2, random.Random(1)) == flip_bytes(b"abcdef", 2, random.Random(1))
    assert flip_bytes(b"ab", 10, random.Random(1)) != b"ab"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "params.ops"),
        ({"mode": "bytes", "ops": [{"op": "null", "path": "$.a"}]}, "params.ops"),
        ({"mode": "bytes", "flips": 0}, "params.flips"),
        ({"mode": "bytes", "max_body_bytes": 0}, "params.max_body_bytes"),
        ({"mode": "bits"}, "params.mode"),
        ({"ops": [{"op": "null", "path": "a.b"}]}, "params.ops[0].path"),
        ({"ops": [{"op": "null", "path": "$.a"}, {"op": "null", "path": "$.a..b"}]}, "params.ops[1].path"),
        ({"ops": [{"op": "null", "path": "$"}]}, "params.ops[0].path"),
        ({"ops": [{"op": "explode", "path": "$.a"}]}, "params.ops[0].op"),
        ({"ops": [{"op": "scale", "path": "$.a"}]}, "params.ops[0].factor"),
        ({"ops": [{"op": "null", "path": "$.a", "factor": 2}]}, "params.ops[0].factor"),
        ({"ops": [{"op": "null", "path": "$.a", "value": 2}]}, "params.ops[0].value"),
        ({"ops": [{"op": "null", "path": "$.a", "where": 2}]}, "params.ops[0].where"),
        ({"ops": [{"path": "$.a"}]}, "params.ops[0].op"),
        ({"ops": [{"op": "null", "path": "$.a"}], "direction": "both"}, "params.direction"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("corrupt", params)
    assert [e.field for e in err.value.errors] == [field]


def test_hooks_and_params_round_trip() -> None:
    assert CorruptFault(mode="bytes").hooks() == {Hook.WRAP_RESPONSE_BODY}
    fault = build_fault("corrupt", {"ops": [{"op": "scale", "path": "$.p[*]", "factor": 0.5}]})
    assert build_fault("corrupt", fault.params()) == fault
