"""A real ML upstream for proxy tests: OIP v2, TF Serving, MLflow, OpenAI (JSON and SSE), Feast.

Answers are deterministic functions of the request (so a direct call and a proxied call can
be compared byte for byte) and use upstream-style spacing (``json.dumps`` defaults), so a
rewritten body is visibly different. It runs in its own thread and event loop, so one server
can serve a whole test module and its timing does not compete with the test's own loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

TOKENS = ["The", " answer", " is", " 42", "."]
FEATURES = ["driver_id", "conv_rate", "acc_rate", "avg_daily_trips"]


def _score(x: Any) -> float:
    value = float(x) if isinstance(x, (int, float)) else float(len(str(x)))
    return round(min(0.99, max(0.01, value / 100.0)), 4)


def _json(doc: Any) -> web.Response:
    return web.Response(body=json.dumps(doc).encode(), content_type="application/json")


async def oip_infer(request: web.Request) -> web.Response:
    body = await request.json()
    xs = body["inputs"][0]["data"]
    ps = [_score(x) for x in xs]
    doc = {"model_name": request.match_info["model"], "model_version": "3", "id": body.get("id", ""),
           "outputs": [{"name": "probabilities", "shape": [len(ps), 2], "datatype": "FP32",
                        "data": [v for p in ps for v in (round(1 - p, 4), p)]},
                       {"name": "label", "shape": [len(ps)], "datatype": "INT64", "data": [int(p >= 0.5) for p in ps]}]}
    return _json(doc)


async def tf_predict(request: web.Request) -> web.Response:
    body = await request.json()
    rows = body["instances"]
    return _json({"predictions": [[round(1 - _score(r["amount"]), 4), _score(r["amount"])] for r in rows]})


async def invocations(request: web.Request) -> web.Response:
    body = await request.json()
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        column = split["columns"].index("amount") if "amount" in split["columns"] else None
        ps = [_score(row[column]) if column is not None else 0.5 for row in split["data"]]
    else:
        rows = body.get("dataframe_records") or body.get("instances") or []
        ps = [_score(r.get("amount", 50)) if isinstance(r, dict) else 0.5 for r in rows]
    return _json({"predictions": ps})


def _chunk(content: str | None = None, *, role: bool = False, finish: str | None = None) -> bytes:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    doc = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "demo-llm",
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return _json({"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "demo-llm",
                      "system_fingerprint": "fp_demo",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(TOKENS)},
                                   "logprobs": None, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": len(TOKENS), "total_tokens": 5 + len(TOKENS)}})
    interval = float(request.query.get("interval_ms", "0")) / 1000.0
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    events = [_chunk(role=True), *[_chunk(t) for t in TOKENS], _chunk(finish="stop"), b"data: [DONE]\n\n"]
    for i, event in enumerate(events):
        if i and interval:
            await asyncio.sleep(interval)
        await response.write(event)
    await response.write_eof()
    return response


async def completions(request: web.Request) -> web.Response:
    return _json({"id": "cmpl-1", "object": "text_completion", "created": 1700000000, "model": "demo-llm",
                  "choices": [{"text": "".join(TOKENS), "index": 0, "logprobs": None, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})


async def embeddings(request: web.Request) -> web.Response:
    body = await request.json()
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [{"object": "embedding", "index": i, "embedding": [round(len(t) / (k + 1), 4) for k in range(8)]}
            for i, t in enumerate(texts)]
    return _json({"object": "list", "data": data, "model": "demo-embed",
                  "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})


async def feast(request: web.Request) -> web.Response:
    body = await request.json()
    ids = body["entities"]["driver_id"]
    results = [{"values": [d, round((d % 100) / 100, 3), round((d % 7) / 7, 3), d % 300],
                "statuses": ["PRESENT"] * 4,
                "event_timestamps": ["1970-01-01T00:00:00Z", *["2024-05-01T12:00:00Z"] * 3]} for d in ids]
    return _json({"metadata": {"feature_names": FEATURES}, "results": results})


def app() -> web.Application:
    application = web.Application()
    r = application.router
    r.add_post("/v2/models/{model}/infer", oip_infer)
    r.add_post("/v1/models/{model:[^/:]+}:predict", tf_predict)
    r.add_post("/invocations", invocations)
    r.add_post("/v1/chat/completions", chat)
    r.add_post("/v1/completions", completions)
    r.add_post("/v1/embeddings", embeddings)
    r.add_post("/get-online-features", feast)
    return application


@contextmanager
def serving(port: int) -> Iterator[str]:
    """Run the upstream on 127.0.0.1:``port`` in a background thread; yield its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app(), access_log=None, shutdown_timeout=0.5)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="ml-upstream", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("ML upstream did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
