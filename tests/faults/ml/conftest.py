"""Running an ML fault over one response (or request) body with the fake exchange."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from faults.base import PROCEED, BodyEdit
from faults.catalogue import build_fault
from faults.exchange import Exchange


class Applied:
    """What a client would get: the body, the headers after the fault ran, and the declared body edit."""

    def __init__(self, body: bytes, ex: Exchange, edit: BodyEdit) -> None:
        self.body = body
        self.ex = ex
        self.edit = edit

    @property
    def doc(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
def apply(make_exchange: Any, make_body: Any, drain: Any) -> Callable[..., Any]:
    states: dict[int, Any] = {}  # each fault's state across exchanges, as the proxy keeps it

    async def run(kind: str, params: dict[str, Any], raw: bytes | dict[str, Any], *, path: str = "/",
                  seed: int = 1, status: int = 200, content_type: str = "application/json",
                  split_at: int = 7, fault: Any = None) -> Applied:
        raw = json.dumps(raw).encode() if isinstance(raw, dict) else raw
        fault = fault or build_fault(kind, params)
        headers = {"Content-Length": str(len(raw)), "Content-Type": content_type}
        state = states.setdefault(id(fault), fault.new_state())
        ex = make_exchange(seed=seed, path=path, status=status, response_headers=headers, state=state)
        assert await fault.on_response(ex) is PROCEED
        edit = fault.response_edit(ex)
        body = fault.wrap_response_body(ex, make_body(raw[:split_at], raw[split_at:]))
        return Applied(b"".join(await drain(body)), ex, edit)

    return run
