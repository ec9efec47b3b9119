"""Demo-stack fixtures: one training per session (in a temp cache), services on free ports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from brownout.demo.model import DemoBundle, load_or_train
from brownout.demo.stack import DemoStack


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="session")
def bundle(demo_cache: Path) -> DemoBundle:
    return load_or_train(demo_cache)


@pytest.fixture(scope="session")
def golden(bundle: DemoBundle) -> list[dict[str, Any]]:
    return [json.loads(line) for line in bundle.golden_path.read_text().splitlines()]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def stack(demo_cache: Path, bundle: DemoBundle) -> AsyncIterator[DemoStack]:
    """The whole stack in-process, uncached (cache behaviour has its own tests)."""
    async with DemoStack.start(demo_cache, redis=False) as s:
        yield s
