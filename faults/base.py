"""The Fault contract: what a fault kind is, what it sees, and what it may answer.

A fault kind is a frozen dataclass whose fields are its parameters (units in the names:
``delay_ms``, ``bytes_per_s``), validated in ``validate()``. Its class docstring is its
catalogue entry. It may implement any of the hooks below; the proxy calls only the hooks a
kind overrides, in phase order, for the faults selected for a request:

* ``on_connection`` — nothing sent upstream yet (reset, refuse, delay);
* ``on_request``    — request head known (delay, answer without upstream, rewrite headers);
* ``on_response``   — upstream head known in ``ex.status``/``ex.response_headers``,
  nothing sent to the client yet (delay, rewrite, replace, reset);
* ``wrap_request_body`` / ``wrap_response_body`` — transform the chunk stream (throttle,
  truncate, corrupt, pace). Raise ``FaultAborted`` inside to reset the client.

Hooks return an outcome; the first non-``Proceed`` outcome wins. Faults never touch
``random``, ``time`` or ``asyncio.sleep`` directly: they use ``ex.rng``, ``ex.now()`` and
``ex.sleep()``, which tests replace with a seeded rng and a fake clock.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from multidict import CIMultiDict
from pydantic import ConfigDict


class Phase(StrEnum):
    CONNECTION = "connection"
    REQUEST = "request"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class Proceed:
    """Carry on: forward as usual."""


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the client now with this response instead of (or in place of) upstream's."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reset:
    """Close the client connection without a response: RST, or FIN when ``graceful``."""

    graceful: bool = False


Outcome = Proceed | Respond | Reset
PROCEED = Proceed()

_NOT_READ = object()


class Exchange:
    """One request as faults see it. The proxy builds it; tests build it with fakes.

    ``request_headers`` is the outgoing copy (faults may rewrite it). ``status`` and
    ``response_headers`` are set when the upstream head is known; faults may rewrite them
    in ``on_response`` (a fault that changes the body length must fix or drop
    ``Content-Length`` there).
    """

    __slots__ = (
        "route", "request_id", "method", "path", "query", "client", "request_headers",
        "request_json", "rng", "now", "sleep", "status", "response_headers",
    )

    def __init__(
        self,
        *,
        route: str,
        request_id: str,
        method: str,
        path: str,
        rng: random.Random,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        query: str = "",
        client: str = "",
        request_headers: CIMultiDict[str] | None = None,
        request_json: Any = _NOT_READ,
    ) -> None:
        self.route = route
        self.request_id = request_id
        self.method = method
        self.path = path
        self.query = query
        self.client = client
        self.request_headers: CIMultiDict[str] = request_headers if request_headers is not None else CIMultiDict()
        self.request_json = request_json
        self.rng = rng
        self.now = now
        self.sleep = sleep
        self.status: int | None = None
        self.response_headers: CIMultiDict[str] = CIMultiDict()


@dataclass(frozen=True)
class Fault:
    """Base of every HTTP fault kind (see the module docstring for the contract)."""

    kind: ClassVar[str] = ""
    # Parsing of parameters from JSON/YAML: unknown parameters are errors, never ignored.
    __pydantic_config__ = ConfigDict(extra="forbid")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the parameter when a value is out of range."""

    async def on_connection(self, ex: Exchange) -> Outcome:
        return PROCEED

    async def on_request(self, ex: Exchange) -> Outcome:
        return PROCEED

    async def on_response(self, ex: Exchange) -> Outcome:
        return PROCEED

    def wrap_request_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return body

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return body

    # -- introspection used by the proxy (once per fault, never per request) and the catalogue

    @classmethod
    def hooks(cls) -> frozenset[str]:
        """Names of the hooks this kind overrides, so the proxy skips the others."""
        names = ("on_connection", "on_request", "on_response", "wrap_request_body", "wrap_response_body")
        return frozenset(n for n in names if getattr(cls, n) is not getattr(Fault, n))

    @classmethod
    def summary(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "").split("\n", 1)[0]

    def params(self) -> dict[str, Any]:
        """Parameters as plain JSON-able values (what the admin API shows)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    return value


def require(condition: bool, field: str, message: str) -> None:
    """Parameter validation helper: ``require(self.delay_ms >= 0, "delay_ms", "must be >= 0")``."""
    if not condition:
        raise ValueError(f"{field}: {message}")
