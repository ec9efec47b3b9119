"""tcp routes in ``brownout proxy`` as users start it: one API and one kill switch for both kinds.

A real redis-server behind a tcp route; toxics added through the native admin API (leases)
and seen through the Toxiproxy-compatible API by toxiproxy-python; the native kill switch
clears toxics and re-enables routes; Toxiproxy's POST /reset clears HTTP faults too.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
import redis
import requests
from toxiproxy.api import APIConsumer

from tests.tcp.helpers import RedisServer


@pytest.fixture
def sidecar(proxy_factory: Any, redis_server: RedisServer) -> Any:
    return proxy_factory({
        "toxiproxy_api": {},
        "routes": [
            {"name": "cache", "kind": "tcp", "upstream": redis_server.address},
            {"name": "api", "kind": "http", "upstream": "http://127.0.0.1:9"},
        ],
    })


def _redis(sidecar: Any) -> redis.Redis:
    host, port = sidecar.routes["cache"].split(":")
    return redis.Redis(host=host, port=int(port), socket_timeout=5)


def _ping_ms(client: redis.Redis) -> float:
    started = time.perf_counter()
    assert client.ping()
    return (time.perf_counter() - started) * 1000


def _fastest_ms(client: redis.Redis, samples: int = 5) -> float:
    """The fastest of several pings: a busy machine only ever adds to a round trip."""
    return min(_ping_ms(client) for _ in range(samples))


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_native_api_leases_a_toxic_that_toxiproxy_clients_see(sidecar: Any) -> None:
    client = _redis(sidecar)
    assert _fastest_ms(client) < 50
    created = requests.post(sidecar.admin + "/faults", json={
        "type": "latency", "route": "cache", "params": {"latency": 100}, "id": "slow-cache", "ttl": "1500ms"}, timeout=5)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["params"]["latency"] == 100
    assert abs(_at(shown["expires_at"]) - _at(shown["created_at"]) - 1.5) < 0.002  # the lease asked for
    assert 99 <= _fastest_ms(client) <= 150  # never faster than the toxic's 100 ms
    APIConsumer.host, APIConsumer.port = sidecar.toxiproxy.removeprefix("http://").split(":")
    toxics = APIConsumer.get("/proxies/cache/toxics").json()
    assert [t["name"] for t in toxics] == ["slow-cache"] and toxics[0]["attributes"]["latency"] == 100
    metrics = requests.get(sidecar.admin + "/metrics", timeout=5).text
    assert 'brownout_faults_injected_total{kind="latency",route="cache"}' in metrics
    assert 'brownout_tcp_bytes_total{direction="upstream",route="cache"}' in metrics
    # the lease runs out: the toxic is gone on both APIs (polled, with a deadline far past 1.5 s)
    deadline = time.monotonic() + 15
    while requests.get(sidecar.admin + "/faults", timeout=5).json() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests.get(sidecar.admin + "/faults", timeout=5).json() == []
    assert APIConsumer.get("/proxies/cache/toxics").json() == []
    assert _fastest_ms(client) < 50


def test_native_kill_switch_removes_toxics_and_reenables_routes(sidecar: Any) -> None:
    base = sidecar.toxiproxy
    assert requests.post(base + "/proxies/cache/toxics", json={"type": "latency", "attributes": {"latency": 500}},
                         timeout=5).status_code == 200
    assert requests.post(base + "/proxies/cache", json={"enabled": False}, timeout=5).json()["enabled"] is False
    with pytest.raises(redis.ConnectionError):
        _redis(sidecar).ping()
    cleared = requests.delete(sidecar.admin + "/faults", timeout=5)
    assert cleared.status_code == 200
    proxy = requests.get(base + "/proxies/cache", timeout=5).json()
    assert proxy["enabled"] is True and proxy["toxics"] == []
    assert _fastest_ms(_redis(sidecar)) < 50


def test_toxiproxy_reset_clears_http_faults_too(sidecar: Any) -> None:
    assert requests.post(sidecar.admin + "/faults", json={"type": "error", "route": "api"}, timeout=5).status_code == 201
    assert requests.post(sidecar.admin + "/faults", json={"type": "timeout", "route": "cache", "params": {"timeout": 0}},
                         timeout=5).status_code == 201
    assert requests.post(sidecar.toxiproxy + "/reset", timeout=5).status_code == 204
    assert requests.get(sidecar.admin + "/faults", timeout=5).json() == []
    routes = {r["name"]: r for r in requests.get(sidecar.admin + "/routes", timeout=5).json()}
    assert routes["cache"]["kind"] == "tcp" and routes["cache"]["state"] == "up" and routes["cache"]["active_faults"] == 0


def test_toxic_errors_through_the_native_api(sidecar: Any) -> None:
    bad = requests.post(sidecar.admin + "/faults", json={"type": "latency", "route": "cache", "params": {"latncy": 1}}, timeout=5)
    assert bad.status_code == 400 and bad.json()["field"] == "params.latncy"
    unknown = requests.post(sidecar.admin + "/faults", json={"type": "corrupt", "route": "cache"}, timeout=5)
    assert unknown.status_code == 400 and "slicer" in unknown.json()["error"]
