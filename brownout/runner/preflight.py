"""Preflight: the target answers, every proxy answers, every route the method names exists."""

from __future__ import annotations

import aiohttp

from brownout.admin_client import AdminClient
from brownout.experiment.model import Experiment
from brownout.toxiproxy_adapter import ToxiproxyAdapter
from faults.errors import Unreachable


async def check_target(session: aiohttp.ClientSession, url: str) -> None:
    """Any HTTP answer will do (even 404 or 405): we only need the target to be there."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unreachable(f"target {url} is unreachable: {exc.__class__.__name__}: {exc}") from None


async def check_proxies(experiment: Experiment, clients: dict[int, AdminClient]) -> None:
    routes: dict[int, set[str]] = {}
    for index, client in clients.items():
        await client.health()
        routes[index] = {r["name"] for r in await client.routes()}
    for index, ref in enumerate(experiment.proxies):
        if ref.toxiproxy is not None:
            routes[index] = set(await ToxiproxyAdapter.from_url(ref.toxiproxy).proxies())
    for step_index, step in experiment.fault_steps:
        proxy_index = experiment.proxies.index(experiment.proxy_for(step))
        if proxy_index in routes and step.route not in routes[proxy_index]:
            served = ", ".join(sorted(routes[proxy_index])) or "none"
            raise Unreachable(f"method[{step_index}]: route {step.route!r} is not served by "
                              f"{experiment.proxies[proxy_index].url} (it serves: {served})")
