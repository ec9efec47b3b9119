"""Fixtures of the capacity tests: one proxy in front of a capacity test upstream per module, and a
client session that clears every fault after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.proxy.capacity_helpers import Capacity, capacity_proxy


@pytest.fixture(scope="module")
def capacity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capacity]:
    with capacity_proxy(tmp_path_factory.mktemp("capacity")) as served:
        yield served


@pytest.fixture
async def http(capacity: Capacity) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session
        async with session.delete(capacity[0].admin + "/faults") as response:
            assert response.status == 200
