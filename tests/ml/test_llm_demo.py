"""The demo LLM endpoint, read chunk by chunk with a real SSE client (the stream prober)."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from brownout.demo.llm import LLM_PATH, LlmSettings, create_app, generate
from brownout.demo.stack import DemoStack
from brownout.demo.web import Served, serve
from brownout.steady.streams import StreamProber, StreamSample

PROMPT = {"model": "brownout-demo", "messages": [{"role": "user", "content": "Why do fraud models drift?"}],
          "max_tokens": 32, "stream": True}


@pytest.fixture
async def llm() -> AsyncIterator[Served]:
    async with serve(create_app(LlmSettings(first_token_ms=30.0, token_ms=20.0))) as served:
        yield served


async def probe(url: str, body: dict = PROMPT) -> StreamSample:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session:
        prober = StreamProber(session, url, body, 1.0, time.monotonic, lambda s: None, timeout=10)
        return await prober.probe_once()


async def test_stream_is_paced_ends_with_one_finish_reason_and_done(llm: Served) -> None:
    s = await probe(llm.url + LLM_PATH)
    tokens, reason = generate("user: Why do fraud models drift?", 32)
    assert s.intact, s.problems
    assert s.done and s.finish_reasons == (reason,) and s.tokens == len(tokens) >= 24
    assert s.text == "".join(tokens)  # deterministic: the prompt seeds the text
    assert s.ttft_s is not None and 0.025 <= s.ttft_s < 0.5
    assert statistics.median(s.itl_s) >= 0.015  # tokens arrive one by one, ~20 ms apart, not in one burst
    assert s.e2el_s is not None and s.e2el_s >= 0.03 + 0.02 * (len(tokens) - 1) * 0.9


async def test_length_limit_usage_chunk_and_non_streaming(llm: Served) -> None:
    short = await probe(llm.url + LLM_PATH, {**PROMPT, "max_tokens": 3, "stream_options": {"include_usage": True}})
    assert short.intact and short.tokens == 3 and short.finish_reasons == ("length",)
    async with aiohttp.ClientSession() as session:
        async with session.post(llm.url + LLM_PATH, json={**PROMPT, "stream": False}) as r:
            body = await r.json()
        assert r.status == 200 and body["object"] == "chat.completion"
        [choice] = body["choices"]
        assert choice["message"]["content"] == "".join(generate("user: Why do fraud models drift?", 32)[0])
        assert body["usage"]["completion_tokens"] == len(generate("user: Why do fraud models drift?", 32)[0])
        async with session.get(llm.url + "/v1/models") as r:
            assert (await r.json())["data"][0]["id"] == "brownout-demo"


@pytest.mark.parametrize("body,param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
])
async def test_bad_requests_get_an_openai_400_before_any_stream(llm: Served, body: dict, param: str) -> None:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session, session.post(llm.url + LLM_PATH, json=body) as r:
        assert r.status == 400
        error = (await r.json())["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error"
    refused = await probe(llm.url + LLM_PATH, {"stream": True, **body})
    assert refused.problems[0] == "status 400"


async def test_the_demo_stack_serves_the_llm_on_the_model_api() -> None:
    async with DemoStack.start(redis=False) as stack:
        assert stack.llm_url == stack.url + LLM_PATH
        s = await probe(stack.llm_url)
    assert s.intact and s.tokens >= 24
