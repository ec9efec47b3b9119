"""The fault sink of an external Toxiproxy server (Brownout sidecars: ``brownout.fleet.sink``)."""

from __future__ import annotations

from typing import Any

from brownout.fleet.records import Arming
from brownout.fleet.sink import Window
from brownout.toxiproxy_adapter import ToxiproxyAdapter


class ToxiproxySink:
    """An external Toxiproxy server: toxics have no lease there, so cleanup is all we have."""

    lead_s = 0.0  # no staging: a toxic starts when added

    def __init__(self, url: str) -> None:
        self.name = url
        self.adapter = ToxiproxyAdapter.from_url(url)
        self._routes: dict[str, str] = {}

    async def add(self, body: dict[str, Any], window: Window | None) -> str:
        params = dict(body.get("params") or {})
        stream = params.pop("stream", "downstream")
        toxicity = params.pop("toxicity", 1.0)
        toxic = await self.adapter.add_toxic(body["route"], type=body["type"], attributes=params, stream=stream,
                                             toxicity=toxicity, name=body["id"])
        self._routes[toxic["name"]] = body["route"]
        return str(toxic["name"])

    async def confirm(self, fault_id: str) -> None:
        """Nothing staged: nothing to read back."""

    async def renew(self, fault_id: str, ttl: float) -> None:
        """Toxiproxy has no leases: nothing to renew."""

    async def remove(self, fault_id: str) -> None:
        await self.adapter.remove_toxic(self._routes.pop(fault_id), fault_id)

    def report(self, fault_id: str) -> Arming | None:
        return None
