"""The toxiproxy-python adapter, against a real Toxiproxy-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
import time

import pytest
from toxiproxy.api import APIConsumer

from brownout.toxiproxy_adapter import ToxiproxyAdapter
from faults.errors import Conflict, InvalidInput, NotFound, Unreachable
from tests.conftest import free_port
from tests.tcp.helpers import RedisServer, ToxiServer, port_of


@pytest.fixture
def adapter(toxi: ToxiServer, redis_server: RedisServer) -> ToxiproxyAdapter:
    toxi.call(lambda: toxi.layer.create_proxy("cache", "127.0.0.1:0", redis_server.address))
    return ToxiproxyAdapter.from_url(toxi.url, timeout=2)


async def test_add_update_remove_and_version(adapter: ToxiproxyAdapter, toxi: ToxiServer) -> None:
    assert await adapter.version() == "2.12.0"
    toxic = await adapter.add_toxic("cache", type="latency", attributes={"latency": 100})
    assert toxic["name"] == "latency_downstream" and toxic["attributes"] == {"latency": 100, "jitter": 0}
    updated = await adapter.update_toxic("cache", "latency_downstream", attributes={"jitter": 10}, toxicity=0.5)
    assert updated["attributes"] == {"latency": 100, "jitter": 10} and updated["toxicity"] == 0.5
    assert [t["name"] for t in (await adapter.proxy("cache"))["toxics"]] == ["latency_downstream"]
    await adapter.remove_toxic("cache", "latency_downstream")
    assert (await adapter.proxies())["cache"]["toxics"] == []


async def test_errors_are_raised_as_brownout_errors(adapter: ToxiproxyAdapter) -> None:
    with pytest.raises(NotFound, match="proxy not found"):
        await adapter.add_toxic("nope", type="latency")
    with pytest.raises(InvalidInput, match="invalid toxic type"):
        await adapter.add_toxic("cache", type="down")
    await adapter.add_toxic("cache", type="timeout", name="t")
    with pytest.raises(Conflict, match="toxic already exists"):
        await adapter.add_toxic("cache", type="latency", name="t")
    with pytest.raises(NotFound, match="toxic not found"):
        await adapter.remove_toxic("cache", "missing")


async def test_a_500_is_an_error_not_a_silent_success(adapter: ToxiproxyAdapter) -> None:
    listen = (await adapter.proxy("cache"))["listen"]
    await adapter.set_enabled("cache", False)
    with socket.socket() as squatter:  # take the port while the proxy is down
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port_of(listen)))
        squatter.listen()
        with pytest.raises(Unreachable, match="HTTP 500: listen tcp .*address already in use"):
            await adapter.set_enabled("cache", True)
    assert (await adapter.set_enabled("cache", True))["enabled"] is True


async def test_per_server_address_and_timeouts(adapter: ToxiproxyAdapter) -> None:
    saved = (APIConsumer.host, APIConsumer.port)
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hung = ToxiproxyAdapter("127.0.0.1", silent.getsockname()[1], timeout=0.3)
        start = time.monotonic()
        with pytest.raises(Unreachable, match="unreachable"):
            await hung.proxies()
        assert time.monotonic() - start < 5  # the 0.3 s timeout, not a hang
    with pytest.raises(Unreachable):
        await ToxiproxyAdapter("127.0.0.1", free_port(), timeout=1).version()
    assert "cache" in await adapter.proxies()  # the other server is unaffected
    assert (APIConsumer.host, APIConsumer.port) == saved  # no process-wide client state touched


async def test_remove_all_added_cleans_up_everything(adapter: ToxiproxyAdapter, toxi: ToxiServer) -> None:
    await adapter.add_toxic("cache", type="latency", attributes={"latency": 10})
    await adapter.add_toxic("cache", type="bandwidth", stream="upstream", attributes={"rate": 100})
    await adapter.add_toxic("cache", type="slow_close", name="gone-already")
    await adapter.set_enabled("cache", False)
    toxi.call(lambda: toxi.layer.remove_toxic("cache", "gone-already"))  # someone else removed it
    toxi.call(lambda: toxi.layer.add_toxic("cache", type="noop", name="not-ours"))
    await adapter.remove_all_added()
    state = await adapter.proxy("cache")
    assert state["enabled"] is True and [t["name"] for t in state["toxics"]] == ["not-ours"]
    await adapter.remove_all_added()  # idempotent


async def test_cleanup_failures_are_reported(adapter: ToxiproxyAdapter, toxi: ToxiServer) -> None:
    await adapter.add_toxic("cache", type="latency")
    dead = ToxiproxyAdapter("127.0.0.1", free_port(), timeout=1)
    dead._added = list(adapter._added)  # same bookkeeping, unreachable server
    with pytest.raises(Unreachable, match="cleanup incomplete: toxic cache/latency_downstream"):
        await dead.remove_all_added()
    await adapter.remove_all_added()
    assert (await adapter.proxy("cache"))["toxics"] == []


def test_from_url_rejects_garbage() -> None:
    with pytest.raises(InvalidInput):
        ToxiproxyAdapter.from_url("http://:8474")
    assert ToxiproxyAdapter.from_url("toxiproxy:9000").port == 9000
