"""Small aiohttp helpers shared by the demo services."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from faults.errors import InvalidInput

MAX_BODY_BYTES = 256 * 1024   # larger bodies get 413: an "oversized" edge case is a 4xx


def error(status: int, message: str, *, field: str | None = None,
          headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    body.update(extra)
    return web.json_response(body, status=status, headers=headers)


def invalid(exc: InvalidInput) -> web.Response:
    return error(422, exc.message, field=exc.field)


async def read_json(request: web.Request) -> Any:
    """The decoded body; malformed JSON raises ``InvalidInput`` (answered with 400)."""
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None


def bad_json(exc: InvalidInput) -> web.Response:
    return error(400, exc.message)


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, never one this process handed out before (two picks in a row may otherwise
    be offered the same port; it is bound later, by whoever was given it)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass(frozen=True)
class Served:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Served]:
    """Run ``app`` on host:port (0 picks a free port) until the block exits."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
        yield Served(host=host, port=int(runner.addresses[0][1]))
    finally:
        await runner.cleanup()
