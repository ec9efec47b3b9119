"""The demo's in-process proxy picks its ports free and then binds them: when another process takes
one in between, it picks again instead of failing the whole demo (a CI run hit exactly that)."""

from __future__ import annotations

import socket
from contextlib import AsyncExitStack
from types import SimpleNamespace

import aiohttp
import pytest

from brownout.demo import game_day
from brownout.demo.web import free_port


async def test_a_port_taken_between_picking_and_binding_is_picked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()  # another process's listener, on the first port the proxy will be offered
    offered = [taken.getsockname()[1]]
    monkeypatch.setattr(game_day, "free_port", lambda host: offered.pop() if offered else free_port(host))
    backends = SimpleNamespace(feature_store_url="http://127.0.0.1:9", redis_address=None)
    try:
        async with AsyncExitStack() as stack:
            proxy, routes = await game_day._main_proxy(stack, "127.0.0.1", backends, 9, {})  # type: ignore[arg-type]
            listen = routes[0]["listen"]
            assert listen != f"127.0.0.1:{taken.getsockname()[1]}"
            admin = proxy.admin_address
            assert admin is not None
            async with aiohttp.ClientSession() as http, http.get(f"http://{admin[0]}:{admin[1]}/routes") as r:
                assert r.status == 200
                assert {route["name"] for route in await r.json()} >= {"model-api", "feature-store"}
    finally:
        taken.close()


async def test_another_bind_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def refused(*args: object) -> None:
        calls.append(args)
        raise PermissionError(13, "permission denied")

    monkeypatch.setattr(game_day, "_start_main_proxy", refused)
    with pytest.raises(PermissionError):
        async with AsyncExitStack() as stack:
            await game_day._main_proxy(stack, "127.0.0.1", SimpleNamespace(), 9, {})  # type: ignore[arg-type]
    assert len(calls) == 1


def test_free_port_never_hands_out_the_same_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel may offer the same free port to two picks in a row; the second pick asks again."""
    from brownout.demo import web

    offers = iter([41001, 41001, 41002])

    class OfferingSocket:
        def __enter__(self) -> OfferingSocket:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            pass

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", next(offers))

    monkeypatch.setattr(web, "_handed_out", set())
    monkeypatch.setattr(web.socket, "socket", OfferingSocket)
    assert [web.free_port(), web.free_port()] == [41001, 41002]


def test_free_ports_are_picked_below_the_ephemeral_range_where_client_sockets_get_theirs() -> None:
    """A port from bind(0) is an ephemeral one: any connection made before it is bound may take it."""
    from brownout.demo import web

    start = web._ephemeral_start()
    ports = [web.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(web._PICK_FLOOR <= p < start for p in ports), (start, ports)
    with socket.socket() as s:  # each is free: it can be bound
        s.bind(("127.0.0.1", ports[-1]))
