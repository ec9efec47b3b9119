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
