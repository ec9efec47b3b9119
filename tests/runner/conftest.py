from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BROWNOUT, REPO, free_port, serve_app
from tests.runner.model_server import app, write_data


@dataclass
class Stage:
    """A model server behind a real ``brownout proxy``, plus data files, ready for experiments."""

    folder: Path
    proxy: Any
    model_url: str

    @property
    def target(self) -> str:
        return self.proxy.url("model", "/predict")

    def experiment(self, name: str = "exp.yaml", **overrides: Any) -> Path:
        doc: dict[str, Any] = {
            "version": 1,
            "title": "test experiment",
            "seed": 5,
            "target": {"url": self.target},
            "proxies": [{"admin": self.proxy.admin}],
            "load": {"shape": "constant", "rate": 40, "duration": "4s", "payloads": "payloads.jsonl", "timeout": "2s"},
            "steady_state": {
                "window": "1s",
                # Generous: a 1 ms server on a busy 2-CPU machine has seen a 126 ms p99; faults add 300 ms.
                "sla": {"latency_p99_ms": 250, "error_rate": 0.05},
                "predictions": {"golden": "golden.jsonl", "score": "$.score", "tolerance": 0.0001,
                                "min_agreement": 0.95, "probe_interval": "50ms"},
            },
            "method": [],
            "recovery": {"within": "2s"},
            "report": {"dir": str(self.folder / "reports")},
        }
        for key, value in overrides.items():
            doc[key] = value
        path = self.folder / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def journal(self) -> dict[str, Any]:
        return json.loads((self.folder / "reports" / "journal.json").read_text())


@pytest.fixture
async def stage(tmp_path: Path, proxy_factory: Any) -> AsyncIterator[Stage]:
    runner, url = await serve_app(app())
    write_data(tmp_path)
    proxy = proxy_factory({"routes": [{"name": "model", "upstream": url}], "fault_ttl": {"default": "1m", "max": "10m"}})
    yield Stage(tmp_path, proxy, url)
    await runner.cleanup()


async def brownout_run(*args: str, timeout: float = 60, interrupt_after: float | None = None,
                       sig: int = signal.SIGINT,
                       interrupt_when: Callable[[], Awaitable[bool]] | None = None) -> tuple[int, str, str]:
    """``brownout run`` as users run it; optionally signal it mid-run: ``interrupt_after`` seconds,
    or as soon as ``interrupt_when`` says so (polled; a busy machine may start the run late)."""
    process = await asyncio.create_subprocess_exec(
        *BROWNOUT, "run", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if interrupt_after is not None:
        await asyncio.sleep(interrupt_after)
        process.send_signal(sig)
    elif interrupt_when is not None:
        deadline = time.monotonic() + timeout
        while not await interrupt_when():
            assert time.monotonic() < deadline and process.returncode is None, "the moment to interrupt never came"
            await asyncio.sleep(0.05)
        process.send_signal(sig)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def unused_port() -> Iterator[int]:
    yield free_port()
