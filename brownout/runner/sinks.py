"""Fault sinks: Brownout's native admin API (leases) and an external Toxiproxy server."""

from __future__ import annotations

from typing import Any

from brownout.admin_client import AdminClient
from brownout.toxiproxy_adapter import ToxiproxyAdapter


class AdminSink:
    """A Brownout proxy: every fault is a lease the timeline renews."""

    def __init__(self, name: str, client: AdminClient) -> None:
        self.name = name
        self.client = client

    async def add(self, body: dict[str, Any]) -> str:
        return str((await self.client.add_fault(body))["id"])

    async def renew(self, fault_id: str, ttl: float) -> None:
        await self.client.renew(fault_id, ttl)

    async def remove(self, fault_id: str) -> None:
        await self.client.remove_fault(fault_id)


class ToxiproxySink:
    """An external Toxiproxy server: toxics have no lease there, so cleanup is all we have."""

    def __init__(self, url: str) -> None:
        self.name = url
        self.adapter = ToxiproxyAdapter.from_url(url)
        self._routes: dict[str, str] = {}

    async def add(self, body: dict[str, Any]) -> str:
        params = dict(body.get("params") or {})
        stream = params.pop("stream", "downstream")
        toxicity = params.pop("toxicity", 1.0)
        toxic = await self.adapter.add_toxic(body["route"], type=body["type"], attributes=params, stream=stream,
                                             toxicity=toxicity, name=body["id"])
        self._routes[toxic["name"]] = body["route"]
        return str(toxic["name"])

    async def renew(self, fault_id: str, ttl: float) -> None:
        """Toxiproxy has no leases: nothing to renew."""

    async def remove(self, fault_id: str) -> None:
        await self.adapter.remove_toxic(self._routes.pop(fault_id), fault_id)
