"""The admin API probed as an attacker would, against a real ``brownout proxy``.

NaN and overflowing numbers, deep JSON, cross-site posts, DNS rebinding, the bearer scheme's
case: each is answered with a 4xx ``{error, field}`` and changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

JSON = {"Content-Type": "application/json"}
DOWN = b'{"type": "down", "route": "api", "id": "d"'


async def _send(client: aiohttp.ClientSession, method: str, url: str, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with client.request(method, url, data=data, headers={**JSON, **(headers or {})}) as r:
        return r.status, await r.json(content_type=None)


async def _faults(client: aiohttp.ClientSession, admin: str) -> list[dict[str, Any]]:
    status, body = await _send(client, "GET", admin + "/faults")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_a_bad_ttl_is_refused_and_nothing_is_stored(proxied: Any, client: aiohttp.ClientSession) -> None:
    """A NaN lease passed every range check, was stored and never expired (and broke GET)."""
    proxy = proxied(fault_ttl={"default": "1s", "max": "2s"})
    for ttl in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 4000, b"-1", b'"1e400s"', b'"' + b"9" * 400 + b'h"'):
        status, body = await _send(client, "POST", proxy.admin + "/faults", DOWN + b', "ttl": ' + ttl + b"}")
        assert status == 400 and body["error"], (ttl[:20], body)
        assert body["field"] in ("ttl", None), body  # NaN tokens are refused by the JSON reader itself
        assert await _faults(client, proxy.admin) == []  # nothing stored: GET still answers
    async with client.get(proxy.url("api", "/echo")) as r:
        assert r.status == 200  # and the route is not down


async def test_a_nan_ttl_in_a_patch_leaves_the_lease_as_it_was(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied(fault_ttl={"default": "1s", "max": "2s"})
    status, created = await _send(client, "POST", proxy.admin + "/faults", DOWN + b"}")
    assert status == 201, created
    for ttl in (b"NaN", b"1e400", b"9" * 4000):
        status, body = await _send(client, "PATCH", proxy.admin + "/faults/d", b'{"ttl": ' + ttl + b"}")
        assert status == 400, body
    status, shown = await _send(client, "GET", proxy.admin + "/faults/d")
    assert status == 200 and shown["expires_at"] == created["expires_at"]
    # the 1 s lease still runs out: the route answers again within a generous deadline
    for _ in range(200):
        if await _faults(client, proxy.admin) == []:
            break
        await asyncio.sleep(0.05)
    assert await _faults(client, proxy.admin) == []
    async with client.get(proxy.url("api", "/echo")) as r:
        assert r.status == 200


NUMBERS = [
    (b'{"type": "latency", "route": "api", "params": {"delay_ms": 1e400}}', "params.delay_ms"),
    (b'{"type": "latency", "route": "api", "params": {"delay_ms": "inf"}}', "params.delay_ms"),
    (b'{"type": "latency", "route": "api", "params": {"delay_ms": ' + b"9" * 4000 + b"}}", "params.delay_ms"),
    (b'{"type": "latency", "route": "api", "seed": ' + b"9" * 4000 + b"}", "seed"),
    (b'{"type": "latency", "route": "api", "seed": 18446744073709551616}', "seed"),
    (b'{"type": "latency", "route": "api", "match": {"first_n": ' + b"9" * 30 + b"}}", "match.first_n"),
    (b'{"type": "latency", "route": "api", "match": {"probability": NaN}}', None),
]


async def test_numbers_must_be_finite_and_in_range(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    for body, field in NUMBERS:
        status, answer = await _send(client, "POST", proxy.admin + "/faults", body)
        assert status == 400 and answer["field"] == field, (body[:80], answer)
    assert await _faults(client, proxy.admin) == []


DEEP = [
    b"[" * 2000 + b"]" * 2000,
    b'{"type": "latency", "route": "api", "params": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001,
    # shallow enough for Python's parser, deep enough to break json.dumps when shown again
    b'{"type": "latency", "route": "api", "match": {"body": {"path": "$.a", "equals": '
    + b"[" * 900 + b"]" * 900 + b"}}}",
]


async def test_deep_json_is_a_400(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    for body in DEEP:
        status, answer = await _send(client, "POST", proxy.admin + "/faults", body)
        assert status == 400 and "nested deeper" in answer["error"], (body[:80], answer)
    assert await _faults(client, proxy.admin) == []


async def test_a_body_that_is_not_utf8_is_a_400(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    status, answer = await _send(client, "POST", proxy.admin + "/faults", b'{"type": "\xff"}')
    assert status == 400 and "UTF-8" in answer["error"], answer


async def test_post_and_patch_need_json_content_type(proxied: Any, client: aiohttp.ClientSession) -> None:
    """A page can post text/plain or a form cross-site without a preflight, never JSON."""
    proxy = proxied()
    body = b'{"type": "down", "route": "api", "id": "d"}'
    kinds = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
    for content_type in kinds:
        headers = {"Content-Type": content_type} if content_type else {}
        async with client.post(proxy.admin + "/faults", data=body, headers=headers,
                               skip_auto_headers=() if content_type else ("Content-Type",)) as r:
            answer = await r.json()
            assert r.status == 415 and answer["field"] == "Content-Type", (content_type, answer)
    assert await _faults(client, proxy.admin) == []
    status, _ = await _send(client, "POST", proxy.admin + "/faults", body)
    assert status == 201
    for content_type in kinds:
        headers = {"Content-Type": content_type} if content_type else {}
        async with client.patch(proxy.admin + "/faults/d", data=b'{"ttl": "5s"}', headers=headers,
                                skip_auto_headers=() if content_type else ("Content-Type",)) as r:
            assert r.status == 415, content_type
    async with client.post(proxy.admin + "/faults", data=body, headers={"Content-Type": "application/json; charset=utf-8"}) as r:
        assert r.status == 409  # parameters on the media type are fine (the id is taken)


ENDPOINTS = [("POST", "/faults", b'{"type": "down", "route": "api"}'), ("GET", "/faults", None),
             ("DELETE", "/faults", None), ("GET", "/healthz", None), ("GET", "/metrics", None),
             ("GET", "/openapi.json", None), ("GET", "/routes", None), ("GET", "/faults/x", None),
             ("PATCH", "/faults/x", b"{}"), ("DELETE", "/faults/x", None)]


async def test_a_foreign_origin_is_refused_on_every_endpoint(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    port = proxy.admin.rsplit(":", 1)[1]
    for origin in ("https://evil.example", f"http://evil.example:{port}", "null", "http://127.0.0.1:1", "file://",
                   f"http://127.0.0.1.evil.example:{port}", f"https://evil.example:{port}/x", "garbage",
                   "http://[::1", "http://127.0.0.1:99999", f"ftp://127.0.0.1:{port}"):
        for method, path, body in ENDPOINTS:
            status, answer = await _send(client, method, proxy.admin + path, body, {"Origin": origin})
            assert status == 403 and answer["field"] == "Origin", (origin, method, path, answer)
    assert await _faults(client, proxy.admin) == []
    async with client.get(proxy.url("api", "/echo")) as r:
        assert r.status == 200


async def test_the_admin_api_own_origin_is_accepted(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    port = proxy.admin.rsplit(":", 1)[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"):
        status, answer = await _send(client, "GET", proxy.admin + "/faults", None, {"Origin": origin})
        assert status == 200, (origin, answer)


async def test_without_a_token_only_loopback_host_names_are_answered(proxied: Any,
                                                                     client: aiohttp.ClientSession) -> None:
    """DNS rebinding: a page reaches 127.0.0.1 under its own name, so its Host is not loopback."""
    proxy = proxied()
    port = proxy.admin.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", "localhost.evil.example",
                 f"0.0.0.0:{port}", f"[::ffff:7f00:1]:{port}", "a b", f"user@127.0.0.1:{port}", "", "[::1",
                 "127.0.0.1:99999"):
        for method, path, body in ENDPOINTS:
            status, answer = await _send(client, method, proxy.admin + path, body, {"Host": host})
            assert status == 403 and answer["field"] == "Host", (host, method, path, answer)
    assert await _faults(client, proxy.admin) == []


async def test_loopback_host_names_are_answered(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    port = proxy.admin.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}", f"[::1]:{port}", "127.0.0.2", "localhost"):
        status, answer = await _send(client, "GET", proxy.admin + "/faults", None, {"Host": host})
        assert status == 200, (host, answer)


async def test_with_a_token_any_host_name_is_answered(proxy_factory: Any, upstream: Any,
                                                      client: aiohttp.ClientSession) -> None:
    proxy = proxy_factory({"admin": {"token": "s3cret"}, "routes": [{"name": "api", "upstream": upstream[1]}]})
    auth = {"Authorization": "Bearer s3cret", "Host": "brownout:8475"}
    status, answer = await _send(client, "GET", proxy.admin + "/faults", None, auth)
    assert status == 200, answer
    status, answer = await _send(client, "GET", proxy.admin + "/faults", None, {**auth, "Origin": "https://evil.example"})
    assert status == 403 and answer["field"] == "Origin"  # Origin is checked with a token too


AUTHORIZATIONS = [
    ("Bearer s3cret", 200), ("bearer s3cret", 200), ("BEARER s3cret", 200), ("bEaReR   s3cret ", 200),
    ("Basic s3cret", 401), ("Bearer s3cre", 401), ("Bearer s3cretX", 401), ("s3cret", 401), ("Bearer", 401),
    ("Bearer S3CRET", 401), ("Bearer s3cr\u00e9t", 401), ("", 401), ("Bearer s3cret s3cret", 401),
]


async def test_the_bearer_scheme_is_case_insensitive_the_token_is_not(
        proxy_factory: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxy_factory({"admin": {"token": "s3cret"}, "routes": [{"name": "api", "upstream": upstream[1]}]})
    for authorization, status in AUTHORIZATIONS:
        got, answer = await _send(client, "GET", proxy.admin + "/faults", None, {"Authorization": authorization})
        assert got == status, (authorization, answer)
        if status == 401:
            assert answer["error"] and answer["field"] is None
