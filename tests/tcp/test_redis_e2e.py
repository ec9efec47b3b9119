"""End to end: a real redis-server behind a tcp route, toxics driven with toxiproxy-python,
effects measured with the redis client and raw sockets.

Timings are judged so that a busy machine cannot fail them: a delay is never shorter than the
toxic's (a hard lower bound), and the fastest of several samples, which load only ever makes
slower, must be within a generous margin above it.
"""

from __future__ import annotations

import socket
import statistics
import time

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry
from toxiproxy import Toxiproxy
from toxiproxy.proxy import Proxy

from tests.tcp.helpers import RedisServer, ToxiServer, port_of, wait_for


def client(proxy: Proxy, timeout: float = 5.0) -> redis.Redis:
    """A redis client that reports the first failure instead of retrying it away."""
    return redis.Redis(port=port_of(proxy.listen), socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def ping_ms(r: redis.Redis) -> float:
    start = time.perf_counter()
    assert r.ping()
    return (time.perf_counter() - start) * 1000


def pings_ms(r: redis.Redis, samples: int = 8) -> list[float]:
    return [ping_ms(r) for _ in range(samples)]


SLACK_MS = 1.0  # event-loop timers may fire up to a millisecond early
MARGIN_MS = 50.0  # how far above the toxic the fastest of several samples may land


def raw(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(proxy.listen)), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_all(sock: socket.socket) -> tuple[bytes, list[int]]:
    """Read until EOF; return the bytes and the size of every read."""
    data, reads = b"", []
    while chunk := sock.recv(65536):
        data += chunk
        reads.append(len(chunk))
    return data, reads


@pytest.fixture
def proxy(redis_server: RedisServer, toxi: ToxiServer) -> Proxy:
    return Toxiproxy().create(upstream=redis_server.address, name="redis")


def assert_delayed(samples: list[float], delay_ms: float) -> None:
    """Every sample at least ``delay_ms``; the fastest within ``MARGIN_MS`` above it."""
    assert min(samples) >= delay_ms - SLACK_MS, samples
    assert min(samples) <= delay_ms + MARGIN_MS, samples


def test_latency_adds_100ms_to_a_ping(proxy: Proxy) -> None:
    r = client(proxy)
    base = min(pings_ms(r))
    assert base < MARGIN_MS
    proxy.add_toxic(type="latency", attributes={"latency": 100})  # the connection is already open
    slowed = pings_ms(r)
    assert_delayed(slowed, 100)
    assert statistics.median(slowed) < 100 + 4 * MARGIN_MS, slowed  # not a second toxic's worth
    proxy.destroy_toxic("latency_downstream")
    assert min(pings_ms(r, 5)) < MARGIN_MS


def test_latencies_stack_across_both_streams(proxy: Proxy) -> None:
    r = client(proxy)
    r.ping()
    proxy.add_toxic(type="latency", attributes={"latency": 50})
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 50})
    assert_delayed(pings_ms(r), 100)  # 50 each way, not 50 once


def test_toxic_updated_live_applies_to_open_connections(proxy: Proxy, toxi: ToxiServer) -> None:
    r = client(proxy)
    r.ping()  # connect first: redis-py's handshake takes several round trips
    proxy.add_toxic(type="latency", attributes={"latency": 50})
    assert_delayed(pings_ms(r, 5), 50)
    resp = requests.post(f"{toxi.url}/proxies/redis/toxics/latency_downstream",
                         json={"attributes": {"latency": 150}}, timeout=5)
    assert resp.status_code == 200 and resp.json()["attributes"] == {"latency": 150, "jitter": 0}
    assert_delayed(pings_ms(r, 5), 150)


def test_reset_peer_resets_the_redis_connection(proxy: Proxy) -> None:
    r = client(proxy)
    assert r.ping()
    proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 0})
    with pytest.raises(redis.ConnectionError, match="reset"):
        r.ping()
    proxy.destroy_toxic("reset_peer_upstream")
    assert r.ping()  # a fresh connection is fine again


def test_reset_peer_is_a_real_rst_on_a_raw_socket(proxy: Proxy) -> None:
    proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 100})
    sock = raw(proxy)
    start = time.monotonic()
    sock.sendall(b"PING\r\n")
    with pytest.raises(ConnectionResetError):
        sock.recv(100)
    assert 0.099 <= time.monotonic() - start <= 3.0  # after the toxic's 100 ms, never before
    sock.close()


def test_timeout_black_holes_then_closes(proxy: Proxy) -> None:
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 300})
    sock = raw(proxy)
    start = time.monotonic()
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b""  # the PING is swallowed; the proxy closes the idle connection
    assert 0.299 <= time.monotonic() - start <= 3.0  # after the toxic's 300 ms, never before
    sock.close()


def test_timeout_zero_holds_until_removed_then_closes(proxy: Proxy) -> None:
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    sock = raw(proxy)
    sock.sendall(b"PING\r\n")
    sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        sock.recv(100)  # the reply is black-holed
    sock.settimeout(5)
    proxy.destroy_toxic("timeout_downstream")
    assert sock.recv(100) == b""  # removing a timeout closes the connections it held
    sock.close()


def test_bandwidth_limits_the_rate(proxy: Proxy) -> None:
    r = client(proxy, timeout=10)
    value = b"v" * 400_000
    r.set("big", value)
    proxy.add_toxic(type="bandwidth", attributes={"rate": 400})  # 400 KB/s downstream
    start = time.perf_counter()
    assert r.get("big") == value
    rate = len(value) / (time.perf_counter() - start) / 1000
    # the limit is a ceiling (a small first burst aside); below it only a busy machine's delays
    assert 150 <= rate <= 460, rate


def test_slicer_delivers_many_small_reads(proxy: Proxy, redis_server: RedisServer) -> None:
    redis.Redis(port=redis_server.port).set("k5k", b"s" * 5_000)
    # 20 ms between slices: a reader must stall 200 ms to see ten of them coalesce in one read
    proxy.add_toxic(type="slicer", attributes={"average_size": 100, "size_variation": 0, "delay": 20_000})
    sock = raw(proxy)
    sock.sendall(b"GET k5k\r\nQUIT\r\n")
    data, reads = read_all(sock)
    assert data == b"$5000\r\n" + b"s" * 5_000 + b"\r\n+OK\r\n"
    assert len(reads) >= 20 and max(reads) <= 1000, reads
    sock.close()


def test_limit_data_closes_after_n_bytes(proxy: Proxy, redis_server: RedisServer) -> None:
    redis.Redis(port=redis_server.port).set("k1k", b"l" * 1000)
    proxy.add_toxic(type="limit_data", attributes={"bytes": 50})
    sock = raw(proxy)
    sock.sendall(b"GET k1k\r\n")
    data, _ = read_all(sock)
    assert data == (b"$1000\r\n" + b"l" * 1000)[:50]
    sock.close()


def test_slow_close_delays_the_close(proxy: Proxy) -> None:
    proxy.add_toxic(type="slow_close", attributes={"delay": 400})
    sock = raw(proxy)
    start = time.monotonic()
    sock.sendall(b"QUIT\r\n")
    assert sock.recv(100) == b"+OK\r\n"
    replied = time.monotonic() - start
    assert sock.recv(100) == b""
    closed = time.monotonic() - start
    assert 0.399 <= closed <= 3.0  # the close waits the toxic's 400 ms, the reply does not:
    assert closed - replied >= 0.2, (replied, closed)
    sock.close()


def test_disabled_proxy_refuses_and_closes(proxy: Proxy) -> None:
    sock = raw(proxy)
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"
    with proxy.down():
        assert sock.recv(100) == b""  # the open connection was closed
        with pytest.raises(redis.ConnectionError):
            client(proxy, timeout=1).ping()
        assert Toxiproxy().get_proxy("redis").enabled is False
    assert client(proxy).ping()  # listening again on the same port
    sock.close()


def test_toxicity_is_decided_per_connection(proxy: Proxy) -> None:
    # 200 ms against a 150 ms threshold: a slow ping cannot look fast, and a fast one would need
    # a 150 ms hiccup to look slow
    proxy.add_toxic(type="latency", toxicity=0.5, attributes={"latency": 200})
    verdicts = []
    for _ in range(12):
        sock = raw(proxy)
        slow = []
        for _ in range(2):
            start = time.perf_counter()
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"
            slow.append(time.perf_counter() - start > 0.15)
        assert slow[0] == slow[1]  # a connection is consistently slow or fast
        verdicts.append(slow[0])
        sock.close()
    assert 0 < sum(verdicts) < 12


def test_toxics_are_counted_and_logged_like_faults(proxy: Proxy, toxi: ToxiServer) -> None:
    first, second = client(proxy), client(proxy)
    first.ping(), second.ping()
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    assert toxi.metric("brownout_active_faults", route="redis") == 1
    first.ping(), second.ping(), first.ping()
    assert toxi.metric("brownout_faults_injected_total", route="redis", kind="latency") == 2  # once per connection
    assert toxi.metric("brownout_tcp_bytes_total", route="redis", direction="upstream") >= 3 * 14
    assert toxi.metric("brownout_tcp_bytes_total", route="redis", direction="downstream") >= 5 * 7
    proxy.destroy_toxic("latency_downstream")
    assert toxi.metric("brownout_active_faults", route="redis") == 0


def test_reset_removes_toxics_and_reenables(proxy: Proxy, toxi: ToxiServer) -> None:
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.disable()
    assert Toxiproxy().reset()
    state = requests.get(f"{toxi.url}/proxies/redis", timeout=5).json()
    assert state["enabled"] is True and state["toxics"] == [] and state["listen"] == proxy.listen
    assert min(pings_ms(client(proxy), 5)) < MARGIN_MS
    assert toxi.resets  # the HTTP side was asked to clear its faults too


def test_populate_with_the_python_client(redis_server: RedisServer, toxi: ToxiServer) -> None:
    server = Toxiproxy()
    created = server.populate([{"name": "cache", "upstream": redis_server.address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in created] == ["cache"]
    assert client(created[0]).ping()
    assert set(server.proxies()) == {"cache"}
    server.destroy_all()
    assert server.proxies() == {}


def test_open_connections_survive_nothing_after_delete(proxy: Proxy) -> None:
    sock = raw(proxy)
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"
    assert proxy.destroy()
    assert wait_for(lambda: sock.recv(100) == b"", timeout=10)
    sock.close()
