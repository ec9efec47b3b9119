"""How the proxy frames a body a fault declares it edits (NONE, REWRITE, STREAM), both ways."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.proxy.upstream import SCORE_BODY, as_pairs


async def _add(client: aiohttp.ClientSession, proxy: Any, body: dict[str, Any]) -> None:
    async with client.post(proxy.admin + "/faults", json={"route": "api", **body}) as response:
        assert response.status == 201, await response.text()


def _framing(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in pairs if k.lower() in ("content-length", "transfer-encoding")}


async def test_a_rewritten_request_body_reaches_upstream_with_its_exact_length(
        proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "corrupt", "params": {"direction": "request",
                                                             "ops": [{"op": "set", "path": "$.user", "value": "mallory"}]}})
    sent = json.dumps({"user": "eve", "amount": 12.5}).encode()
    async with client.post(proxy.url("api", "/echo"), data=sent, headers={"Content-Type": "application/json"}) as r:
        echoed = await r.json()
    body = echoed["body"].encode("latin-1")
    assert json.loads(body) == {"user": "mallory", "amount": 12.5}
    assert _framing(as_pairs(echoed)) == {"content-length": str(len(body))}  # measured, not chunked


async def test_a_request_body_only_slowed_keeps_the_clients_length(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    await _add(client, proxy, {"type": "throttle", "params": {"direction": "request", "bytes_per_s": 1_000_000}})
    sent = b"x" * 5000
    async with client.post(proxy.url("api", "/echo"), data=sent) as r:
        echoed = await r.json()
    assert echoed["body"].encode("latin-1") == sent
    assert _framing(as_pairs(echoed)) == {"content-length": "5000"}


async def test_stacked_edits_the_strongest_wins(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    # throttle (NONE) and corrupt (REWRITE) on a response with a Content-Length: measured again.
    await _add(client, proxy, {"type": "throttle", "params": {"bytes_per_s": 1_000_000}})
    await _add(client, proxy, {"type": "corrupt", "params": {"ops": [{"op": "set", "path": "$.fraud", "value": "yes"}]}})
    async with client.get(proxy.url("api", "/score")) as r:
        raw = await r.read()
        assert r.headers["Content-Length"] == str(len(raw)) and "Transfer-Encoding" not in r.headers
    assert json.loads(raw) == {**SCORE_BODY, "fraud": "yes"} and len(raw) != len(json.dumps(SCORE_BODY))
