"""A small OpenAI-compatible LLM endpoint: ``POST /v1/chat/completions`` and ``GET /v1/models``.

No weights: a deterministic text generator seeded by the prompt, paced at a fixed rate, so
stream faults and the TTFT/ITL checks have a real streaming target.
``stream: true`` answers ``text/event-stream``: a role-only first chunk, one chunk per
token, a final chunk with ``finish_reason``, an optional usage chunk
(``stream_options.include_usage``), then ``data: [DONE]``. Bad requests get a 400 with an
OpenAI error body before any streaming starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

LLM_PATH = "/v1/chat/completions"
MAX_TOKENS = 1024
_WORDS = (
    "the", "model", "scores", "each", "transaction", "from", "its", "features", "and", "the", "score",
    "drifts", "when", "the", "features", "go", "stale", "a", "fraud", "signal", "hides", "in", "amount",
    "velocity", "terminal", "risk", "and", "customer", "history", "so", "the", "checker", "compares",
    "golden", "answers", "latency", "percentiles", "and", "tokens", "per", "second", "while", "faults",
    "slow", "the", "feature", "store",
)


@dataclass(frozen=True)
class LlmSettings:
    model: str = "brownout-demo"
    first_token_ms: float = 5.0   # before the first content token (the "prefill")
    token_ms: float = 5.0         # between tokens (the "decode" pace)
    min_tokens: int = 24          # the natural answer length is drawn in [min_tokens, max_length]
    max_length: int = 32


def generate(prompt: str, max_tokens: int, settings: LlmSettings = LlmSettings()) -> tuple[list[str], str]:
    """The tokens for ``prompt`` (same prompt, same tokens) and the finish reason."""
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    natural = rng.randint(settings.min_tokens, settings.max_length)
    words = [rng.choice(_WORDS) for _ in range(natural)]
    words[0] = words[0].capitalize()
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    tokens[-1] += "."
    if max_tokens < natural:
        return tokens[:max_tokens], "length"
    return tokens, "stop"


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return web.json_response(body, status=status)


@dataclass(frozen=True)
class _Request:
    prompt: str
    max_tokens: int
    stream: bool
    include_usage: bool


def _parse(body: Any) -> _Request | web.Response:
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "messages must be a non-empty list", "messages")
    parts = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return _error(400, "each message needs a string role and content", f"messages[{i}]")
        parts.append(f"{m['role']}: {m['content']}")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 64))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS:
        return _error(400, f"max_tokens must be an integer in [1, {MAX_TOKENS}]", "max_tokens")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        return _error(400, "stream must be a boolean", "stream")
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return _Request("\n".join(parts), max_tokens, stream, include_usage)


def _usage(prompt: str, completion: int) -> dict[str, int]:
    prompt_tokens = len(prompt.split())
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    settings: LlmSettings = request.app[SETTINGS]
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"malformed JSON: {exc}")
    parsed = _parse(body)
    if isinstance(parsed, web.Response):
        return parsed
    tokens, reason = generate(parsed.prompt, parsed.max_tokens, settings)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": settings.model,
            "system_fingerprint": "fp_brownout_demo"}
    if not parsed.stream:
        await asyncio.sleep((settings.first_token_ms + settings.token_ms * (len(tokens) - 1)) / 1000)
        return web.json_response({**head, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "".join(tokens)}, "logprobs": None,
             "finish_reason": reason}], "usage": _usage(parsed.prompt, len(tokens))})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)

    async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
        chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

    def choice(delta: dict[str, str], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    try:
        await send(choice({"role": "assistant", "content": ""}))
        for i, token in enumerate(tokens):
            await asyncio.sleep((settings.first_token_ms if i == 0 else settings.token_ms) / 1000)
            await send(choice({"content": token}))
        await send(choice({}, reason))
        if parsed.include_usage:
            await send([], usage=_usage(parsed.prompt, len(tokens)))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away mid-stream: nothing more to send
    return response


async def models(request: web.Request) -> web.Response:
    settings: LlmSettings = request.app[SETTINGS]
    return web.json_response({"object": "list", "data": [
        {"id": settings.model, "object": "model", "created": 0, "owned_by": "brownout"}]})


SETTINGS = web.AppKey("llm_settings", LlmSettings)


def add_routes(app: web.Application, settings: LlmSettings = LlmSettings()) -> None:
    """Mount the endpoint on an existing app (the model API serves it too)."""
    app[SETTINGS] = settings
    app.router.add_post(LLM_PATH, chat_completions)
    app.router.add_get("/v1/models", models)


def create_app(settings: LlmSettings = LlmSettings()) -> web.Application:
    app = web.Application()
    add_routes(app, settings)
    return app
