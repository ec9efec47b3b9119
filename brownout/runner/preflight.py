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
    http: set[str] = set()  # every http route of a Brownout proxy: what the per-route SLIs can count
    for index, client in clients.items():
        await client.health()
        described = await client.routes()
        routes[index] = {r["name"] for r in described}
        http |= {r["name"] for r in described if r.get("kind", "http") == "http"}
    sla = experiment.steady_state.sla
    for key, bounds in (("max_retry_amplification", sla.max_retry_amplification),
                        ("max_retry_after_violations", sla.max_retry_after_violations)):
        for route in bounds:
            if route not in http:
                raise Unreachable(f"steady_state.sla.{key}: route {route!r} is not an http route of any proxy "
                                  f"(they serve: {', '.join(sorted(http)) or 'none'})")
    for index, ref in enumerate(experiment.proxies):
        if ref.toxiproxy is not None:
            routes[index] = set(await ToxiproxyAdapter.from_url(ref.toxiproxy).proxies())
    for step_index, step in experiment.fault_steps:
        proxy_index = experiment.proxies.index(experiment.proxy_for(step))
        if proxy_index in routes and step.route not in routes[proxy_index]:
            served = ", ".join(sorted(routes[proxy_index])) or "none"
            raise Unreachable(f"method[{step_index}]: route {step.route!r} is not served by "
                              f"{experiment.proxies[proxy_index].url} (it serves: {served})")
