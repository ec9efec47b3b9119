"""Kill, stop, pause or restart a container through the Docker Engine API (unix socket).

The API is plain HTTP over ``/var/run/docker.sock``: ``POST /containers/{name}/kill?signal=``,
``/stop``, ``/pause``, ``/restart``; undone with ``/start`` or ``/unpause``. 204 is done,
304 is "already so" (also fine), 404 is no such container, 409 a conflict (not running).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from brownout.experiment.model import DockerTarget
from brownout.targets.base import Target
from faults.errors import BrownoutError, Conflict, NotFound, Unreachable

_UNDO = {"kill": "start", "stop": "start", "pause": "unpause"}


class DockerEngine:
    """The few Engine API calls we need; one short-lived session per call (calls are rare)."""

    def __init__(self, socket_path: str = "/var/run/docker.sock", *, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    async def call(self, method: str, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
        connector = aiohttp.UnixConnector(path=self.socket_path)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.request(method, f"http://docker{path}", params=params) as response:
                    body: Any = await response.json(content_type=None) if response.content_length != 0 else None
                    return response.status, body
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionError) as exc:
            raise Unreachable(
                f"cannot reach the Docker Engine at unix://{self.socket_path}: {exc.__class__.__name__}: {exc} "
                "(is dockerd running, and is the socket mounted and readable?)") from None
        except TimeoutError:
            raise Unreachable(f"the Docker Engine at unix://{self.socket_path} did not answer {method} {path} "
                              f"within {self.timeout:g}s") from None
        except ValueError:
            raise Unreachable(f"the Docker Engine at unix://{self.socket_path} answered {method} {path} with non-JSON") from None

    async def container_action(self, container: str, action: str, params: dict[str, str] | None = None) -> None:
        status, body = await self.call("POST", f"/containers/{quote(container, safe='')}/{action}", params)
        if status in (200, 204, 304):
            return
        message = body.get("message", "") if isinstance(body, dict) else str(body or "")
        error: type[BrownoutError] = {404: NotFound, 409: Conflict}.get(status, Unreachable)
        raise error(f"docker {action} {container}: {status}: {message}".rstrip(": "))

    async def inspect(self, container: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"/containers/{quote(container, safe='')}/json")
        if status == 404:
            raise NotFound(f"no container {container!r}")
        if status != 200 or not isinstance(body, dict):
            raise Unreachable(f"docker inspect {container}: {status}")
        return body


class DockerTargetAdapter(Target):
    def __init__(self, config: DockerTarget, *, engine: DockerEngine | None = None) -> None:
        super().__init__(config.restart_after if config.action in _UNDO else None)
        self.config = config
        self.engine = engine or DockerEngine(config.socket)

    def describe(self) -> str:
        return f"{self.config.action} docker:{self.config.container}"

    @property
    def can_undo(self) -> bool:
        return self.config.action in _UNDO

    async def _act(self) -> None:
        params = {"signal": self.config.signal} if self.config.action == "kill" else None
        await self.engine.container_action(self.config.container, self.config.action, params)

    async def _undo(self) -> None:
        await self.engine.container_action(self.config.container, _UNDO[self.config.action])
