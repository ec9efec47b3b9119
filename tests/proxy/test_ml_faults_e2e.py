"""ML-aware and LLM-stream faults through the real proxy: every status stays 200, the payload lies.

One ML upstream (its own thread) and one ``brownout proxy`` serve the whole module; each test
adds its faults through the admin API and the kill switch clears them afterwards.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.proxy.ml_upstream import TOKENS, serving

OIP_REQ = ("/v2/models/fraud/infer", {"id": "req-7", "inputs": [{"name": "amount", "shape": [2], "datatype": "FP32",
                                                                   "data": [20.0, 80.0]}]})
TF_REQ = ("/v1/models/fraud:predict", {"instances": [{"amount": 20}, {"amount": 80}]})
MLFLOW_REQ = ("/invocations", {"dataframe_records": [{"amount": 20, "age": 30}, {"amount": 80, "age": 40}]})
FEAST_REQ = ("/get-online-features", {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002]}})
CHAT_REQ = ("/v1/chat/completions", {"model": "demo-llm", "messages": [{"role": "user", "content": "hi"}]})
EMBED_REQ = ("/v1/embeddings", {"model": "demo-embed", "input": ["hello", "brownout"]})
CONTROL = [OIP_REQ, TF_REQ, MLFLOW_REQ, FEAST_REQ, CHAT_REQ, EMBED_REQ]


@pytest.fixture(scope="module")
def ml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyProcess, str]]:
    with serving(free_port()) as url:
        proxy = start_proxy(tmp_path_factory.mktemp("ml"), {"routes": [{"name": "ml", "kind": "http", "upstream": url}]})
        try:
            yield proxy, url
        finally:
            proxy.stop()


@pytest.fixture
async def http(ml: tuple[ProxyProcess, str]) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session
        async with session.delete(ml[0].admin + "/faults") as response:  # kill switch between tests
            assert response.status == 200


async def add(http: aiohttp.ClientSession, proxy: ProxyProcess, kind: str, params: dict[str, Any], path: str) -> None:
    body = {"type": kind, "route": "ml", "params": params, "match": {"path": path}}
    async with http.post(proxy.admin + "/faults", json=body) as response:
        assert response.status == 201, await response.text()


async def post(http: aiohttp.ClientSession, base: str, path: str, body: Any) -> tuple[int, bytes, Any]:
    async with http.post(base + path, json=body) as response:
        return response.status, await response.read(), response.headers


def column(doc: dict[str, Any], name: str, key: str = "values") -> list[Any]:
    i = doc["metadata"]["feature_names"].index(name)
    return [r[key][i] for r in doc["results"]]


CASES: list[tuple[str, dict[str, Any], tuple[str, Any], Any]] = [
    ("missing_features", {"features": ["conv_rate"]}, FEAST_REQ,
     lambda d: column(d, "conv_rate") == [None, None] and column(d, "conv_rate", "statuses") == ["NOT_FOUND"] * 2),
    ("missing_features", {"mode": "drop", "features": ["acc_rate"]}, FEAST_REQ,
     lambda d: "acc_rate" not in d["metadata"]["feature_names"] and all(len(r["values"]) == 3 for r in d["results"])),
    ("missing_features", {"direction": "request", "mode": "drop", "features": ["amount"]}, MLFLOW_REQ,
     lambda d: d["predictions"] == [0.5, 0.5]),  # the model never saw the amount: it defaulted
    ("default_features", {"features": ["conv_rate"], "default_value": 0.0}, FEAST_REQ,
     lambda d: column(d, "conv_rate") == [0.0, 0.0] and column(d, "conv_rate", "statuses") == ["PRESENT"] * 2),
    ("stale_features", {"age_s": 86400}, FEAST_REQ,
     lambda d: column(d, "conv_rate", "event_timestamps") == ["2024-04-30T12:00:00Z"] * 2
     and column(d, "conv_rate", "statuses") == ["OUTSIDE_MAX_AGE"] * 2),
    ("nan_tensor", {"fraction": 1.0, "outputs": ["probabilities"]}, OIP_REQ,
     lambda d: all(math.isnan(v) for v in d["outputs"][0]["data"]) and d["outputs"][1]["data"] == [0, 1]),
    ("nan_tensor", {"value": "infinity", "fraction": 0.5}, EMBED_REQ,
     lambda d: sum(math.isinf(v) for e in d["data"] for v in e["embedding"]) == 8),
    ("schema_drift", {"new_name": "outputs"}, TF_REQ, lambda d: list(d) == ["outputs"]),
    ("schema_drift", {"mode": "dtype"}, OIP_REQ,
     lambda d: d["outputs"][0]["datatype"] == "BYTES" and d["outputs"][0]["data"][1] == "0.2"),
    ("wrong_shape", {"mode": "truncate"}, OIP_REQ,
     lambda d: all(math.prod(o["shape"]) == len(o["data"]) + 1 for o in d["outputs"])),
    ("wrong_shape", {"mode": "truncate", "count": 3}, EMBED_REQ, lambda d: [len(e["embedding"]) for e in d["data"]] == [5, 5]),
    ("score_corruption", {"mode": "power", "exponent": 2}, MLFLOW_REQ,
     lambda d: d["predictions"] == pytest.approx([0.04, 0.64])),
    ("score_corruption", {"mode": "label_swap"}, OIP_REQ,
     lambda d: d["outputs"][0]["data"] == [0.2, 0.8, 0.8, 0.2] and d["outputs"][1]["data"] == [1, 0]),
    ("model_version_skew", {"version": "1"}, OIP_REQ, lambda d: d["model_version"] == "1" and d["id"] == "req-7"),
    ("model_version_skew", {"version": "old-llm"}, CHAT_REQ,
     lambda d: d["model"] == "old-llm" and d["system_fingerprint"] == "fp_old-llm"),
]


@pytest.mark.parametrize(("kind", "params", "request_", "check"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
async def test_ml_fault_shows_in_a_200_payload(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession, kind: str,
                                               params: dict[str, Any], request_: tuple[str, Any], check: Any) -> None:
    proxy, upstream = ml
    path, body = request_
    await add(http, proxy, kind, params, path)
    status, raw, headers = await post(http, proxy.url("ml", ""), path, body)
    assert status == 200
    doc = json.loads(raw)  # a lenient (Python) client; NaN/Infinity arrive as bare tokens
    assert check(doc), doc
    if "Content-Length" in headers:
        assert int(headers["Content-Length"]) == len(raw)
    # Every other request is byte-identical to what upstream itself answers.
    for other_path, other_body in CONTROL:
        if other_path == path:
            continue
        direct = await post(http, upstream, other_path, other_body)
        proxied = await post(http, proxy.url("ml", ""), other_path, other_body)
        assert proxied[:2] == direct[:2] and proxied[2]["Content-Length"] == str(len(direct[1]))


async def test_crossed_responses_hand_one_client_anothers_answer(ml: tuple[ProxyProcess, str],
                                                                 http: aiohttp.ClientSession) -> None:
    proxy, upstream = ml
    path, body = OIP_REQ
    await add(http, proxy, "crossed_responses", {}, path)
    first = {**body, "id": "alice"}
    second = {**body, "id": "bob", "inputs": [{**body["inputs"][0], "data": [5.0, 95.0]}]}
    status1, raw1, _ = await post(http, proxy.url("ml", ""), path, first)
    status2, raw2, _ = await post(http, proxy.url("ml", ""), path, second)
    assert status1 == status2 == 200
    assert json.loads(raw1)["id"] == "alice"  # the first passes
    assert json.loads(raw2)["id"] == "alice"  # bob got alice's answer
    assert raw2 == (await post(http, upstream, path, first))[1]  # byte for byte


async def test_matching_request_with_nothing_to_change_is_byte_identical(ml: tuple[ProxyProcess, str],
                                                                        http: aiohttp.ClientSession) -> None:
    proxy, upstream = ml
    path, body = FEAST_REQ
    await add(http, proxy, "missing_features", {"features": ["no_such_feature"]}, path)
    direct = await post(http, upstream, path, body)
    proxied = await post(http, proxy.url("ml", ""), path, body)
    assert proxied[:2] == direct[:2]


# -- LLM streams, read chunk by chunk by an SSE client


async def sse_events(http: aiohttp.ClientSession, url: str) -> tuple[list[tuple[float, str | None, str]], float]:
    """A minimal spec-following SSE client (line-buffered, as vLLM's benchmark client reads).

    Returns (arrival time since the request was sent, event name, data) per event, and the
    time of the first event that carries non-empty content (TTFT).
    """
    events: list[tuple[float, str | None, str]] = []
    ttft = math.nan
    started = time.perf_counter()
    body = {**CHAT_REQ[1], "stream": True}
    async with http.post(url, json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        data: list[str] = []
        name: str | None = None
        async for line_bytes in response.content:  # aiohttp yields one line at a time
            line = line_bytes.decode().rstrip("\r\n")
            if line.startswith(":"):
                continue
            if line:
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "data":
                    data.append(value)
                elif field == "event":
                    name = value
                continue
            if data:
                now = time.perf_counter() - started
                text = "\n".join(data)
                events.append((now, name, text))
                if math.isnan(ttft) and text != "[DONE]":
                    choices = json.loads(text).get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        ttft = now
            data, name = [], None
    return events, ttft


def contents(events: list[tuple[float, str | None, str]]) -> list[str]:
    out = []
    for _, _, data in events:
        if data != "[DONE]":
            delta = (json.loads(data).get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                out.append(delta["content"])
    return out


async def test_ttft_is_the_injected_first_event_delay(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    """Judged so load cannot fail it: every TTFT is at least the delay (a hard bound), and the
    fastest of five, which load only makes slower, is within 100 ms of the fastest without it."""
    proxy, _ = ml
    baseline = [(await sse_events(http, proxy.url("ml", CHAT_REQ[0])))[1] for _ in range(5)]
    await add(http, proxy, "stream", {"first_event_delay_ms": 300}, CHAT_REQ[0])
    ttfts = []
    for _ in range(5):
        events, ttft = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
        assert contents(events) == TOKENS and events[-1][2] == "[DONE]"
        ttfts.append(ttft)
    assert min(ttfts) >= 0.299, ttfts
    assert min(ttfts) <= min(baseline) + 0.300 + 0.100, (baseline, ttfts)


async def test_pacing_spaces_events(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    await add(http, proxy, "stream", {"event_interval_ms": 60}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(events)]
    assert len(events) == 8 and 0.048 <= statistics.median(gaps) <= 0.072, gaps


async def test_stall_and_coalesce(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    await add(http, proxy, "stream", {"stall_after_events": 2, "stall_ms": 300, "coalesce": 2}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
    times = [t for t, _, _ in events]
    assert len(events) == 8
    assert times[2] - times[1] >= 0.240  # the stall
    assert max(times[1] - times[0], times[3] - times[2]) < 0.1  # pairs arrive together


@pytest.mark.parametrize("keep_done", [False, True])
async def test_cut_after_n_events(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession, keep_done: bool) -> None:
    proxy, _ = ml
    await add(http, proxy, "stream", {"cut_after_events": 3, "keep_done": keep_done}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))  # a clean EOF: no exception
    assert contents(events) == TOKENS[:2]
    assert [e[2] == "[DONE]" for e in events] == [False, False, False] + ([True] if keep_done else [])


async def test_finish_reason_dropped(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    await add(http, proxy, "stream", {"drop_finish_reason": True}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
    assert contents(events) == TOKENS and events[-1][2] == "[DONE]"
    assert all(json.loads(d)["choices"][0]["finish_reason"] is None for _, _, d in events[:-1])


async def test_in_band_error_event(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    await add(http, proxy, "stream", {"error_after_events": 3, "error_message": "CUDA out of memory",
                                      "keep_done": True}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
    assert contents(events) == TOKENS[:2]
    assert json.loads(events[3][2])["error"]["message"] == "CUDA out of memory"
    assert events[4][2] == "[DONE]" and len(events) == 5


async def test_corrupted_tokens(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    await add(http, proxy, "stream", {"corrupt_tokens": 1.0}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
    got = contents(events)
    assert len(got) == len(TOKENS) and all(a != b for a, b in zip(got, TOKENS, strict=True))
    assert events[-1][2] == "[DONE]"


async def test_unmatched_stream_is_byte_identical(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, upstream = ml
    await add(http, proxy, "stream", {"cut_after_events": 1, "first_event_delay_ms": 200}, "/v1/completions")
    body = {**CHAT_REQ[1], "stream": True}
    direct = await post(http, upstream, CHAT_REQ[0], body)
    proxied = await post(http, proxy.url("ml", ""), CHAT_REQ[0], body)
    assert proxied[:2] == direct[:2]


async def test_admin_api_names_a_bad_ml_parameter(ml: tuple[ProxyProcess, str], http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    for kind, params, field in [("stream", {"coalesce": 0}, "params.coalesce"),
                                ("score_corruption", {"mode": "scramble"}, "params.mode")]:
        async with http.post(proxy.admin + "/faults", json={"type": kind, "route": "ml", "params": params}) as response:
            answer = await response.json()
            assert response.status == 400 and answer["field"] == field, answer


async def test_model_version_skew_names_the_old_model_in_every_streamed_chunk(ml: tuple[ProxyProcess, str],
                                                                                http: aiohttp.ClientSession) -> None:
    proxy, _ = ml
    await add(http, proxy, "model_version_skew", {"version": "demo-llm-old"}, CHAT_REQ[0])
    events, _ = await sse_events(http, proxy.url("ml", CHAT_REQ[0]))
    assert contents(events) == TOKENS and events[-1][2] == "[DONE]"
    assert {json.loads(d)["model"] for _, _, d in events[:-1]} == {"demo-llm-old"}
