"""Fault sinks: Brownout's native admin API (leases) and an external Toxiproxy server."""

from __future__ import annotations

from typing import Any

from brownout.admin_client import AdminClient


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
