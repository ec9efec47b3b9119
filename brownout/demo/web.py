"""Small aiohttp helpers shared by the demo services."""

from __future__ import annotations

import functools
import json
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
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
_PICK_FLOOR = 10000  # below it: well-known services' ports
_picker = random.Random()  # seeded from the OS: parallel processes pick different ports


@functools.cache
def _ephemeral_start() -> int:
    """Where the kernel's ephemeral range starts: the ports client sockets get (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, never one this process handed out before, bound later by whoever was given it.

    It is picked below the ephemeral range: a connection made anywhere on the machine between the
    pick and the bind never takes it (a port from ``bind(0)`` is an ephemeral one, and a busy test
    run opens thousands). Only where that range starts too low is the kernel asked for one."""
    top = _ephemeral_start()
    for _ in range(1000):
        wanted = _picker.randrange(_PICK_FLOOR, top) if top - _PICK_FLOOR >= 1024 else 0
        if wanted and wanted in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, wanted))
            except OSError:
                continue  # in use: pick another
            port = int(s.getsockname()[1])
        if port not in _handed_out:  # the kernel may offer one port to two picks in a row
            _handed_out.add(port)
            return port
    raise OSError(f"no free port found on {host} after 1000 tries")


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
