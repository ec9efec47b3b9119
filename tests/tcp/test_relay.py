"""The relay itself: byte-exact through toxic chains, live edits on open connections,
upstream failures, close propagation and no leaked tasks (checked by the fixture)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator

import pytest

from faults.errors import InvalidInput
from tests.conftest import free_port
from tests.tcp.helpers import ToxiServer, port_of


@pytest.fixture
def echo(toxi: ToxiServer) -> Iterator[str]:
    """An echo server on the proxy's loop; yields its address."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            handlers.discard(task)

    async def start() -> asyncio.AbstractServer:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    server = toxi.call(start)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def stop() -> None:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    toxi.call(stop)


def make_proxy(toxi: ToxiServer, upstream: str, name: str = "echo") -> int:
    proxy = toxi.call(lambda: toxi.layer.create_proxy(name, "127.0.0.1:0", upstream))
    return port_of(proxy.listen)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    received = bytearray()
    sent = 0
    while len(received) < len(payload):
        sock.settimeout(0.001)
        if sent < len(payload):
            try:
                sent += sock.send(payload[sent:sent + 65536])
            except TimeoutError:
                pass  # send buffer full: read some first
        sock.settimeout(0.001 if sent < len(payload) else 10)
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not chunk:
            break
        received += chunk
    sock.settimeout(10)
    return bytes(received)


def test_bytes_pass_exactly_with_and_without_toxics(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    payload = os.urandom(2_000_000)
    sock = connect(port)
    assert echo_roundtrip(sock, payload) == payload
    layer = toxi.layer
    toxi.call(lambda: layer.add_toxic("echo", type="latency", attributes={"latency": 5, "jitter": 5}))
    toxi.call(lambda: layer.add_toxic("echo", type="slicer", stream="upstream",
                                      attributes={"average_size": 5000, "size_variation": 1000}))
    toxi.call(lambda: layer.add_toxic("echo", type="noop"))
    assert echo_roundtrip(sock, payload) == payload  # order kept, nothing lost
    toxi.call(lambda: layer.remove_toxic("echo", "slicer_upstream"))
    toxi.call(lambda: layer.remove_toxic("echo", "latency_downstream"))
    toxi.call(lambda: layer.remove_toxic("echo", "noop_downstream"))
    assert echo_roundtrip(sock, payload) == payload  # back on the fast path
    for direction in ("upstream", "downstream"):
        assert toxi.metric("brownout_tcp_bytes_total", route="echo", direction=direction) == 3 * len(payload)
    sock.close()


def test_removing_a_toxic_releases_held_data_at_once(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    sock = connect(port)
    toxi.call(lambda: toxi.layer.add_toxic("echo", type="latency", attributes={"latency": 5000}))
    start = time.monotonic()
    sock.sendall(b"held")
    time.sleep(0.1)
    toxi.call(lambda: toxi.layer.remove_toxic("echo", "latency_downstream"))
    assert sock.recv(10) == b"held"
    assert time.monotonic() - start < 3  # released at removal, long before the toxic's 5 s
    toxi.call(lambda: toxi.layer.add_toxic("echo", type="bandwidth", attributes={"rate": 0}))
    sock.sendall(b"stalled")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(10)  # rate 0 forwards nothing ...
    sock.settimeout(5)
    toxi.call(lambda: toxi.layer.remove_toxic("echo", "bandwidth_downstream"))
    assert sock.recv(10) == b"stalled"  # ... until the toxic goes
    sock.close()


def test_reset_peer_spares_connections_its_toxicity_skips(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    toxi.call(lambda: toxi.layer.add_toxic("echo", type="reset_peer", toxicity=0))
    sock = connect(port)
    sock.sendall(b"hello")
    assert sock.recv(10) == b"hello"
    sock.shutdown(socket.SHUT_WR)
    assert sock.recv(10) == b""  # a normal close (FIN), never a stray RST
    sock.close()
    assert toxi.metric("brownout_faults_injected_total", route="echo", kind="reset_peer") == 0


def test_unreachable_upstream_closes_the_client(toxi: ToxiServer) -> None:
    port = make_proxy(toxi, f"127.0.0.1:{free_port()}", name="dead")
    sock = connect(port)
    assert sock.recv(10) == b""
    assert toxi.metric("brownout_upstream_errors_total", route="dead", cause="connect") == 1
    sock.close()


def test_upstream_resolved_per_connection(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, f"localhost:{echo.rsplit(':', 1)[1]}", name="named")
    sock = connect(port)
    sock.sendall(b"by name")
    assert sock.recv(10) == b"by name"
    sock.close()


def test_either_side_closing_tears_down_both(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    sock = connect(port)
    sock.sendall(b"x")
    assert sock.recv(1) == b"x"
    sock.close()
    proxy = toxi.layer.get_proxy("echo")
    deadline = time.monotonic() + 10
    while proxy.connection_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.connection_count == 0


def test_many_connections_at_once(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    toxi.call(lambda: toxi.layer.add_toxic("echo", type="latency", attributes={"latency": 20}))
    socks = [connect(port) for _ in range(50)]
    for i, sock in enumerate(socks):
        sock.sendall(b"%03d" % i)
    for i, sock in enumerate(socks):
        assert sock.recv(3) == b"%03d" % i
        sock.close()
    assert toxi.metric("brownout_faults_injected_total", route="echo", kind="latency") == 50


def test_a_toxic_counts_once_per_connection_however_edited(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    sock = connect(port)
    layer = toxi.layer
    toxi.call(lambda: layer.add_toxic("echo", type="latency", attributes={"latency": 1}))
    toxi.call(lambda: layer.update_toxic("echo", "latency_downstream", attributes={"latency": 2}))
    toxi.call(lambda: layer.update_toxic("echo", "latency_downstream", toxicity=1))
    sock.sendall(b"x")
    assert sock.recv(1) == b"x"
    assert toxi.metric("brownout_faults_injected_total", route="echo", kind="latency") == 1
    assert layer.injection_count("echo", "latency_downstream") == 1
    toxi.call(lambda: layer.remove_toxic("echo", "latency_downstream"))
    toxi.call(lambda: layer.add_toxic("echo", type="latency", attributes={"latency": 1}))
    assert toxi.metric("brownout_faults_injected_total", route="echo", kind="latency") == 2  # a new toxic
    sock.close()


def test_native_admin_view_of_toxics(toxi: ToxiServer, echo: str) -> None:
    """What the native admin API uses: leased toxics with params in Toxiproxy units."""
    make_proxy(toxi, echo)
    layer = toxi.layer
    assert "latency" in layer.toxic_types() and "reset_peer" in layer.toxic_types()
    shown = toxi.call(lambda: layer.add_leased_toxic("echo", "latency", {"latency": 100, "stream": "upstream"}, "f-1"))
    assert shown == {"latency": 100, "jitter": 0, "stream": "upstream", "toxicity": 1.0}
    with pytest.raises(InvalidInput) as unknown:
        toxi.call(lambda: layer.add_leased_toxic("echo", "latency", {"delay_ms": 5}, "f-2"))
    assert unknown.value.field == "params.delay_ms"
    with pytest.raises(InvalidInput) as bad:
        toxi.call(lambda: layer.add_leased_toxic("echo", "bandwidth", {"rate": -1}, "f-3"))
    assert bad.value.field == "params.rate"
    assert [p["toxics"][0]["name"] for p in layer.describe()] == ["f-1"]
    toxi.call(lambda: layer.remove_leased_toxic("echo", "f-1"))
    toxi.call(lambda: layer.remove_leased_toxic("echo", "f-1"))  # already gone is fine
    assert toxi.call(lambda: layer.remove_all_toxics()) == 0


def test_no_sockets_leak(toxi: ToxiServer, echo: str) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    port = make_proxy(toxi, echo)
    toxi.call(lambda: toxi.layer.add_toxic("echo", type="latency", attributes={"latency": 1}))
    toxi.call(lambda: toxi.layer.add_toxic("echo", type="reset_peer", name="rst", toxicity=0.5))
    socks = [connect(port) for _ in range(20)]
    for sock in socks:
        sock.sendall(b"x")
    for sock in socks:
        try:
            sock.recv(1)
        except ConnectionResetError:
            pass
        sock.close()
    toxi.call(lambda: toxi.layer.delete_proxy("echo"))
    deadline = time.monotonic() + 10
    while open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert open_fds() <= before


def test_data_sent_before_upstream_connects_keeps_its_order(toxi: ToxiServer, echo: str) -> None:
    port = make_proxy(toxi, echo)
    for _ in range(20):
        payload = os.urandom(300_000)
        sock = connect(port)
        assert echo_roundtrip(sock, payload) == payload  # sent at once, while upstream is being dialled
        sock.close()
