"""crossed_responses and model_version_skew."""

from __future__ import annotations

import json
from typing import Any

import pytest

from faults.base import BodyEdit
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from tests.faults.ml.shapes import CHAT, EMBED, OIP, PATHS, raw


async def test_crossed_responses_serves_the_previous_answer(apply: Any) -> None:
    fault = build_fault("crossed_responses", {})
    first = raw({"id": "a", "score": 0.1})
    second = raw({"id": "b", "score": 0.9})
    out1 = await apply("", {}, first, path=PATHS["oip"], fault=fault)
    assert out1.body == first  # nothing to cross with yet
    out2 = await apply("", {}, second, path=PATHS["oip"], fault=fault)
    assert out2.body == first  # request b got request a's answer, byte for byte
    out3 = await apply("", {}, first, path=PATHS["oip"], fault=fault)
    assert out3.body == second


async def test_crossed_responses_identical_bodies_and_other_paths_pass(apply: Any) -> None:
    fault = build_fault("crossed_responses", {})
    body = raw({"id": "a"})
    assert (await apply("", {}, body, path="/x", fault=fault)).body == body
    assert (await apply("", {}, body, path="/x", fault=fault)).body == body  # same body: nothing crossed
    other = raw({"id": "z"})
    assert (await apply("", {}, other, path="/y", fault=fault)).body == other  # another path: its own buffer
    shared = build_fault("crossed_responses", {"same_path": False})
    await apply("", {}, body, path="/x", fault=shared)
    assert (await apply("", {}, other, path="/y", fault=shared)).body == body


async def test_crossed_responses_buffer_is_bounded(apply: Any) -> None:
    fault = build_fault("crossed_responses", {"buffer_size": 2})
    bodies = [raw({"n": i}) for i in range(6)]
    for body in bodies[:5]:
        await apply("", {}, body, path="/x", fault=fault)
    seen = {(await apply("", {}, bodies[5], path="/x", fault=fault, seed=s)).body for s in range(20)}
    assert seen <= set(bodies[2:6]) and bodies[0] not in seen
    assert fault.params() == {"buffer_size": 2, "same_path": True}
    assert build_fault("crossed_responses", fault.params()) == fault


async def test_model_version_skew_oip(apply: Any) -> None:
    out = await apply("model_version_skew", {"version": "1"}, raw(OIP), path=PATHS["oip"])
    assert out.doc["model_version"] == "1" and out.doc["outputs"] == OIP["outputs"]
    no_version = {k: v for k, v in OIP.items() if k != "model_version"}
    out = await apply("model_version_skew", {"version": "1"}, raw(no_version), path=PATHS["oip"])
    assert out.doc["model_version"] == "1"


async def test_model_version_skew_openai(apply: Any) -> None:
    out = await apply("model_version_skew", {"version": "m-0"}, raw(CHAT), path=PATHS["chat"])
    assert out.doc["model"] == "m-0" and out.doc["system_fingerprint"] == "fp_m-0"
    out = await apply("model_version_skew", {"version": "emb-0", "fingerprint": "fp_x"}, raw(EMBED), path=PATHS["embed"])
    assert out.doc["model"] == "emb-0" and "system_fingerprint" not in out.doc


async def test_model_version_skew_paths_and_no_change(apply: Any) -> None:
    out = await apply("model_version_skew", {"version": "2", "paths": ["$.meta.v"]}, {"meta": {"v": "3"}}, path="/x")
    assert out.doc == {"meta": {"v": "2"}}
    body = raw({"model_version": "2"})
    assert (await apply("model_version_skew", {"version": "2"}, body, path="/x")).body == body


@pytest.mark.parametrize(("kind", "params", "field"), [
    ("crossed_responses", {"buffer_size": 0}, "params.buffer_size"),
    ("model_version_skew", {}, "params.version"),
    ("model_version_skew", {"version": ""}, "params.version"),
    ("model_version_skew", {"version": "1", "paths": ["$"]}, "params.paths"),
])
def test_validation_names_the_parameter(kind: str, params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault(kind, params)
    assert field in [e.field for e in err.value.errors]


async def test_model_version_skew_rewrites_every_streamed_chunk(apply: Any) -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-new", "system_fingerprint": "fp_new",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    stream = (b": keep-alive\n\n" + b"data: " + json.dumps(chunk).encode() + b"\n\n"
              + b"data: " + json.dumps({**chunk, "choices": []}).encode() + b"\n\ndata: [DONE]\n\n")
    out = await apply("model_version_skew", {"version": "gpt-old"}, stream, path=PATHS["chat"],
                      content_type="text/event-stream")
    events = out.body.split(b"\n\n")
    assert events[0] == b": keep-alive" and events[3] == b"data: [DONE]"  # untouched events pass byte for byte
    docs = [json.loads(e.removeprefix(b"data: ")) for e in events[1:3]]
    assert all(d["model"] == "gpt-old" and d["system_fingerprint"] == "fp_gpt-old" for d in docs)
    assert docs[0]["choices"][0]["delta"] == {"content": "hi"}
    assert out.edit == BodyEdit.STREAM and out.ex.details == {"values_changed": 4}
    untouched = await apply("model_version_skew", {"version": "gpt-new", "fingerprint": "fp_new"}, stream,
                            path=PATHS["chat"], content_type="text/event-stream")
    assert untouched.body == stream
