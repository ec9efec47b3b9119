"""The native admin API: CRUD, leases, the kill switch, auth, errors, metrics and logs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from tests.conftest import free_port

LATENCY = {"type": "latency", "route": "api", "params": {"delay_ms": 100}}


async def test_fault_crud_and_listing(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    async with client.post(proxy.admin + "/faults", json={**LATENCY, "id": "slow-api", "ttl": "2m", "match": {"path": "/echo*"}}) as r:
        assert r.status == 201
        created = await r.json()
    assert created["id"] == "slow-api" and created["params"]["delay_ms"] == 100
    assert created["match"] == {"path": "/echo*"} and created["expires_at"] is not None
    async with client.get(proxy.url("api", "/echo")) as r:
        assert r.status == 200
    async with client.get(proxy.admin + "/faults/slow-api") as r:
        assert (await r.json())["injections"] == 1
    async with client.patch(proxy.admin + "/faults/slow-api", json={"params": {"delay_ms": 5}}) as r:
        assert r.status == 200 and (await r.json())["params"]["delay_ms"] == 5
    async with client.get(proxy.admin + "/faults") as r:
        listed = await r.json()
    assert [f["id"] for f in listed] == ["slow-api"] and listed[0]["injections"] == 1
    async with client.get(proxy.admin + "/routes") as r:
        routes = await r.json()
    assert routes[0]["name"] == "api" and routes[0]["active_faults"] == 1
    async with client.delete(proxy.admin + "/faults/slow-api") as r:
        assert r.status == 200
    async with client.get(proxy.admin + "/faults/slow-api") as r:
        assert r.status == 404 and "slow-api" in (await r.json())["error"]


async def test_lease_expires_and_renewal_extends_it(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    async with client.post(proxy.admin + "/faults", json={**LATENCY, "id": "short", "ttl": "600ms"}) as r:
        assert r.status == 201
    async with client.post(proxy.admin + "/faults", json={**LATENCY, "id": "renewed", "ttl": "600ms"}) as r:
        assert r.status == 201
    await asyncio.sleep(0.3)
    async with client.patch(proxy.admin + "/faults/renewed", json={"ttl": "5s"}) as r:
        assert r.status == 200
    await asyncio.sleep(0.6)
    async with client.get(proxy.admin + "/faults") as r:
        assert [f["id"] for f in await r.json()] == ["renewed"]


async def test_kill_switch_removes_everything_and_wakes_sleepers(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    for i in range(3):
        body = {"type": "latency", "route": "api", "params": {"delay_ms": 20000}, "id": f"f{i}"}
        async with client.post(proxy.admin + "/faults", json=body) as r:
            assert r.status == 201
    started = time.monotonic()
    stuck = asyncio.ensure_future(client.get(proxy.url("api", "/echo")))
    await asyncio.sleep(0.3)
    async with client.delete(proxy.admin + "/faults") as r:
        assert sorted((await r.json())["removed"]) == ["f0", "f1", "f2"]
    response = await asyncio.wait_for(stuck, 5)
    assert response.status == 200
    assert time.monotonic() - started < 3  # removal interrupted the 20 s sleep at once
    async with client.get(proxy.admin + "/faults") as r:
        assert await r.json() == []


async def test_errors_are_json_and_name_the_field(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied(fault_ttl={"default": "1m", "max": "10m"})
    cases = [
        (b'{"type": "latency", ', 400, None),
        ({"type": "nope", "route": "api"}, 400, "type"),
        ({"type": "latency", "route": "missing"}, 400, "route"),
        ({"type": "latency", "route": "api", "params": {"delay_msec": 1}}, 400, "params.delay_msec"),
        ({"type": "latency", "route": "api", "params": {"delay_ms": -5}}, 400, "params.delay_ms"),
        ({"type": "latency", "route": "api", "ttl": "1h"}, 400, "ttl"),
        ({"type": "latency", "route": "api", "match": {"probability": 2}}, 400, "match.probability"),
        ({"type": "latency", "route": "api", "colour": "red"}, 400, "colour"),
    ]
    for body, status, field in cases:
        kwargs = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, bytes) else {"json": body}
        async with client.post(proxy.admin + "/faults", **kwargs) as r:
            answer = await r.json()
            assert r.status == status, (body, answer)
            assert answer["field"] == field, (body, answer)
            assert answer["error"]
    async with client.post(proxy.admin + "/faults", json={"type": "nope", "route": "api"}) as r:
        assert "latency" in (await r.json())["error"]  # an unknown type lists the known ones
    async with client.post(proxy.admin + "/faults", json={**LATENCY, "id": "dup"}) as r:
        assert r.status == 201
    async with client.post(proxy.admin + "/faults", json={**LATENCY, "id": "dup"}) as r:
        assert r.status == 409


async def test_token_is_required_except_for_probes(proxy_factory: Any, upstream: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxy_factory({"admin": {"token": "${TEST_TOKEN}"}, "routes": [{"name": "api", "upstream": upstream[1]}]},
                          env={"TEST_TOKEN": "s3cret"})
    async with client.get(proxy.admin + "/faults") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await r.json())["error"]
    async with client.get(proxy.admin + "/faults", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401
    async with client.get(proxy.admin + "/faults", headers={"Authorization": "Bearer s3cret"}) as r:
        assert r.status == 200
    for open_path in ("/healthz", "/metrics", "/openapi.json"):
        async with client.get(proxy.admin + open_path) as r:
            assert r.status == 200
    assert "s3cret" not in proxy.stderr_path.read_text()


async def test_metrics_and_one_log_event_per_injection(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied(fault_header=True)
    async with client.post(proxy.admin + "/faults", json={"type": "latency", "route": "api", "params": {"delay_ms": 1}, "id": "lat"}) as r:
        assert r.status == 201
    for _ in range(3):
        async with client.get(proxy.url("api", "/echo"), headers={"X-Request-Id": "req-42"}) as r:
            assert r.headers["x-brownout-fault"] == "lat"
    async with client.get(proxy.admin + "/metrics") as r:
        text = await r.text()
    assert 'brownout_requests_total{route="api",status="200"} 3.0' in text
    assert 'brownout_faults_injected_total{kind="latency",route="api"} 3.0' in text
    assert 'brownout_active_faults{route="api"} 1.0' in text
    assert 'brownout_request_duration_seconds_count{route="api"} 3.0' in text
    events = [e for e in proxy.log_events() if e.get("event") == "fault_injected"]
    assert len(events) == 3
    assert events[0]["fault_id"] == "lat" and events[0]["kind"] == "latency"
    assert events[0]["route"] == "api" and events[0]["request_id"] == "req-42"


async def test_fault_header_is_off_by_default(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied()
    async with client.post(proxy.admin + "/faults", json={**LATENCY, "params": {"delay_ms": 1}}) as r:
        assert r.status == 201
    async with client.get(proxy.url("api", "/echo")) as r:
        assert "x-brownout-fault" not in r.headers


async def test_config_faults_are_static(proxied: Any, client: aiohttp.ClientSession) -> None:
    proxy = proxied(faults=[{"type": "latency", "route": "api", "params": {"delay_ms": 1}, "id": "static"}])
    async with client.get(proxy.admin + "/faults/static") as r:
        assert (await r.json())["expires_at"] is None
    async with client.patch(proxy.admin + "/faults/static", json={"ttl": "1m"}) as r:
        assert r.status == 409
    async with client.delete(proxy.admin + "/faults/static") as r:
        assert r.status == 200


async def test_non_loopback_admin_without_token_is_a_config_error(tmp_path: Any) -> None:
    import subprocess

    from tests.conftest import BROWNOUT

    config = tmp_path / "bad.yaml"
    config.write_text(f"admin:\n  listen: 0.0.0.0:{free_port()}\nroutes:\n  - name: api\n    upstream: http://127.0.0.1:1\n    listen: 127.0.0.1:{free_port()}\n")
    result = subprocess.run([*BROWNOUT, "proxy", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3
    assert f"{config}:2:" in result.stderr and "admin.listen" in result.stderr and "token" in result.stderr
