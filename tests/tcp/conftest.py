"""Fixtures for tcp routes: a real redis-server, and a TcpLayer with its Toxiproxy API served
on 127.0.0.1 from its own event-loop thread (so synchronous clients — toxiproxy-python,
redis-py, raw sockets — drive it as they would drive a separate server)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import uvloop
from aiohttp import web
from toxiproxy.api import APIConsumer

from proxy.metrics import ProxyMetrics
from proxy.tcp import TcpLayer, make_toxiproxy_app
from tests.conftest import free_port
from tests.tcp.helpers import RedisServer, ToxiServer

@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:  # a failure, not a skip: setup installs it
        pytest.fail("redis-server is not installed: run scripts/setup.sh (it installs redis-server)")
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=port, socket_timeout=1).ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield RedisServer(port, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def toxi() -> Iterator[ToxiServer]:
    # The proxy runs on uvloop in production when available; BROWNOUT_TEST_LOOP=asyncio
    # runs the same tests on the stdlib loop.
    use_uvloop = os.environ.get("BROWNOUT_TEST_LOOP", "uvloop") == "uvloop"
    loop = uvloop.new_event_loop() if use_uvloop else asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="toxi-server", daemon=True)
    thread.start()
    metrics = ProxyMetrics()
    resets: list[float] = []

    async def on_reset() -> None:
        resets.append(time.monotonic())

    async def start() -> tuple[TcpLayer, web.AppRunner, int]:
        layer = TcpLayer(metrics=metrics, seed=42, on_reset=on_reset)
        runner = web.AppRunner(make_toxiproxy_app(layer), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return layer, runner, port

    layer, runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    server = ToxiServer(loop, layer, metrics, port, resets)
    # toxiproxy-python keeps its server address in class attributes of APIConsumer, shared by the process.
    saved = (APIConsumer.host, APIConsumer.port)
    APIConsumer.host, APIConsumer.port = "127.0.0.1", port
    try:
        yield server
    finally:
        APIConsumer.host, APIConsumer.port = saved

        async def stop() -> None:
            await runner.cleanup()
            await layer.close()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert not pending, f"leaked tasks: {pending}"

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
