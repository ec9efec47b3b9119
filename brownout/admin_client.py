"""A small client for the native admin API, used by ``brownout faults`` and the runner."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from faults.errors import (
    BrownoutError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unreachable,
    UnsupportedMediaType,
)

_BY_STATUS: dict[int, type[BrownoutError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 415: UnsupportedMediaType}


class AdminClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=timeout))

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        # json= sends Content-Type: application/json, which the admin API requires of a body
        try:
            async with self._session.request(method, self.base_url + path, json=body) as response:
                text = await response.text()
                data = json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"admin API {self.base_url} unreachable: {exc.__class__.__name__}: {exc}") from None
        except ValueError:
            raise Unreachable(f"admin API {self.base_url} answered {method} {path} with non-JSON") from None
        if response.status >= 400:
            message = data.get("error", text) if isinstance(data, dict) else text
            error = _BY_STATUS.get(response.status, Unreachable)
            if issubclass(error, InvalidInput):
                raise error(message, data.get("field") if isinstance(data, dict) else None)
            raise error(f"{method} {path}: {response.status}: {message}")
        return data

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/healthz")

    async def routes(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/routes")

    async def faults(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/faults")

    async def get_fault(self, fault_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/faults/{fault_id}")

    async def add_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/faults", body)

    async def renew(self, fault_id: str, ttl: float) -> dict[str, Any]:
        return await self._call("PATCH", f"/faults/{fault_id}", {"ttl": ttl})

    async def remove_fault(self, fault_id: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/faults/{fault_id}")

    async def clear(self) -> dict[str, Any]:
        return await self._call("DELETE", "/faults")

    # -- recordings

    async def start_recording(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/recordings", body)

    async def recording(self, recording_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/recordings/{recording_id}")

    async def patch_recording(self, recording_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("PATCH", f"/recordings/{recording_id}", body)

    async def recording_data(self, recording_id: str, sink: Any) -> int:
        """Stream a recording's lines into ``sink`` (a binary file); returns the bytes written."""
        path = f"/recordings/{recording_id}/data"
        written = 0
        try:
            async with self._session.get(self.base_url + path, timeout=aiohttp.ClientTimeout(total=None,
                                                                                             sock_read=60)) as response:
                if response.status >= 400:
                    text = await response.text()
                    raise _BY_STATUS.get(response.status, Unreachable)(f"GET {path}: {response.status}: {text[:300]}")
                async for chunk in response.content.iter_chunked(256 * 1024):
                    sink.write(chunk)
                    written += len(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"admin API {self.base_url} unreachable: {exc.__class__.__name__}: {exc}") from None
        return written
