"""A small real model server whose behaviour the test controls.

``POST /predict`` scores ``{"id": ..., "x": float}`` as ``sigmoid(x)``: deterministic, so a
golden set knows the answers. Run as a process: ``python -m tests.runner.model_server PORT``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from aiohttp import web


def score(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


async def predict(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        x = float(body["x"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "body must be {\"x\": number}"}, status=400)
    if not math.isfinite(x):
        return web.json_response({"error": "x must be finite"}, status=422)
    return web.json_response({"id": body.get("id"), "score": round(score(x), 6), "model_version": "v1"})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/predict", predict)
    application.router.add_get("/healthz", health)
    return application


def write_data(folder: Path, cases: int = 40) -> tuple[Path, Path]:
    """A payload corpus and a golden set for this server."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus, golden = folder / "payloads.jsonl", folder / "golden.jsonl"
    xs = [(-4 + 8 * i / (cases - 1)) for i in range(cases)]
    corpus.write_text("".join(json.dumps({"body": {"id": i, "x": x}}) + "\n" for i, x in enumerate(xs)))
    golden.write_text("".join(json.dumps({"body": {"id": i, "x": x}, "expected": round(score(x), 6),
                                          "label": int(score(x) > 0.5)}) + "\n" for i, x in enumerate(xs)))
    return corpus, golden


if __name__ == "__main__":
    web.run_app(app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
