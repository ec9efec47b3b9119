"""Preflight of the target: it answers. (The proxies: ``brownout.fleet.prepare``.)"""

from __future__ import annotations

import aiohttp

from faults.errors import Unreachable


async def check_target(session: aiohttp.ClientSession, url: str) -> None:
    """Any HTTP answer will do (even 404 or 405): we only need the target to be there."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unreachable(f"target {url} is unreachable: {exc.__class__.__name__}: {exc}") from None
