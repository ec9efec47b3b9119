"""A fault that raises never takes the proxy down: the request carries on unfaulted.

The faulty kind exists only in this test, so the proxy runs in-process here; everything
else is real (sockets, upstream, client).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from faults import Exchange, Fault, Outcome
from faults.match import MATCH_ALL
from proxy.config import ProxyConfig
from proxy.server import ProxyServer
from tests.conftest import free_port
from tests.proxy.upstream import SCORE_BODY


@dataclass(frozen=True)
class ExplodingFault(Fault):
    """Raises in every hook."""

    kind = "exploding"

    async def on_request(self, ex: Exchange) -> Outcome:
        raise RuntimeError("boom in on_request")

    async def on_response(self, ex: Exchange) -> Outcome:
        raise RuntimeError("boom in on_response")

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async def explode() -> AsyncIterator[bytes]:
            raise RuntimeError("boom in the body")
            yield b""  # pragma: no cover

        return explode()


async def test_a_fault_that_raises_leaves_requests_unharmed(upstream: Any) -> None:
    config = ProxyConfig.model_validate({
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "routes": [{"name": "api", "listen": f"127.0.0.1:{free_port()}", "upstream": upstream[1]}],
    })
    server = ProxyServer(config)
    await server.start()
    try:
        server.store.add(fault_id="bad", fault_type="exploding", route="api", fault=ExplodingFault(),
                         match=MATCH_ALL, ttl=60, seed=1)
        async with aiohttp.ClientSession() as client:
            for _ in range(3):
                async with client.get(f"http://{config.routes[0].listen}/score") as response:
                    assert response.status == 200
                    assert await response.json() == SCORE_BODY
            async with client.get(f"http://{config.admin.listen}/metrics") as response:
                metrics = await response.text()
        assert server.store.get("bad").injections == 3
        assert 'brownout_fault_errors_total{kind="exploding",route="api"} 9.0' in metrics  # 3 hooks × 3 requests
    finally:
        await server.stop(grace=1)
