from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import serve_app
from tests.proxy.upstream import Upstream


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    server = Upstream()
    runner, url = await serve_app(server.app())
    yield server, url
    await runner.cleanup()


@pytest.fixture
def proxied(upstream: tuple[Upstream, str], proxy_factory: Any) -> Any:
    """A proxy with one http route ``api`` in front of the test upstream."""

    def start(**extra: Any) -> Any:
        config = {"routes": [{"name": "api", "kind": "http", "upstream": upstream[1], **extra.pop("route", {})}], **extra}
        return proxy_factory(config)

    return start
