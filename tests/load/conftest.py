"""Fixtures for load tests: one real server subprocess (tests/load/servers.py) per session."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import uvloop
from _pytest.nodes import Item

from brownout.demo.web import free_port


def pytest_asyncio_loop_factories(config: pytest.Config, item: Item) -> dict[str, object]:
    """The generator is meant to run on uvloop (a dependency on Linux): test it that way."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Base URL of the test server (see servers.py for its endpoints)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("servers.py")), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"test server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("test server did not start") from None
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
