"""The tests' own proxy starter: ports are picked free and bound later by the proxy process, so one
taken in between (three workers run in parallel) means starting again on new ones."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import tests.conftest as harness


def test_a_port_taken_before_the_proxy_binds_it_is_picked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real = harness.free_port
    offered = [taken.getsockname()[1], real()]  # popped from the end: the admin's, then the route's (taken)
    monkeypatch.setattr(harness, "free_port", lambda: offered.pop() if offered else real())
    try:
        proxy = harness.start_proxy(tmp_path, {"routes": [{"name": "api", "upstream": "http://127.0.0.1:9"}]})
        try:
            assert proxy.routes["api"] != f"127.0.0.1:{taken.getsockname()[1]}"
            assert proxy.process.poll() is None and not offered
        finally:
            proxy.stop()
    finally:
        taken.close()
