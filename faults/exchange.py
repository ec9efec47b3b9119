"""What a fault sees of an exchange: ``ExchangeData`` (shared by every fault selected for it,
built by the proxy) and ``Exchange`` (one fault's view of it: its own rng, sleep, state and
report). The contract they serve is in ``faults.base``'s docstring.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:
    from faults.base import Hook

Detail = str | int | float | bool
NO_JSON: Any = object()  # no JSON request body: not read (no body predicate asked), or not JSON


WireHeaders = Sequence[tuple[bytes, bytes]]  # (name, value) pairs as on the wire


class ExchangeData:
    """One exchange as every fault selected for it shares it. The proxy builds it.

    ``request_headers`` is the outgoing copy (faults may rewrite it). ``status`` and
    ``response_headers`` are set when the upstream head is known (faults may rewrite them in
    ``on_response``); at the end ``status`` is the final one. ``started`` is ``now()`` when the
    exchange began.

    The proxy hands both header sets over as on the wire (``request_wire``, ``set_response``):
    they are decoded (latin-1) into a ``CIMultiDict`` when a fault first reads them, and
    ``request_wire()``/``response_wire()`` give them back as they came while none has, so the
    many faults that never look at headers cost no conversion either way.
    """

    __slots__ = ("route", "request_id", "method", "path", "query", "client", "_request_headers", "_request_wire",
                 "request_json", "status", "_response_headers", "_response_wire", "now", "started")

    def __init__(self, *, route: str, request_id: str, method: str, path: str, now: Callable[[], float],
                 query: str = "", client: str = "", request_headers: CIMultiDict[str] | None = None,
                 request_wire: WireHeaders = (), request_json: Any = NO_JSON) -> None:
        self.route = route
        self.request_id = request_id
        self.method = method
        self.path = path
        self.query = query
        self.client = client
        self._request_headers = request_headers  # None: still as on the wire, in ``_request_wire``
        self._request_wire = request_wire
        self.request_json = request_json
        self.status: int | None = None
        self._response_headers: CIMultiDict[str] | None = None
        self._response_wire: WireHeaders = ()
        self.now = now
        self.started = now()

    @property
    def request_headers(self) -> CIMultiDict[str]:
        if self._request_headers is None:
            self._request_headers = decode_headers(self._request_wire)
        return self._request_headers

    @request_headers.setter
    def request_headers(self, value: CIMultiDict[str]) -> None:
        self._request_headers = value

    def request_wire(self) -> WireHeaders | None:
        """The request headers as the proxy gave them; None once a fault has read or set ``request_headers``."""
        return self._request_wire if self._request_headers is None else None

    def set_response(self, status: int, wire: WireHeaders) -> None:
        """Upstream's head: its status and headers as on the wire."""
        self.status = status
        self._response_headers, self._response_wire = None, wire

    @property
    def response_headers(self) -> CIMultiDict[str]:
        if self._response_headers is None:
            self._response_headers = decode_headers(self._response_wire)
        return self._response_headers

    @response_headers.setter
    def response_headers(self, value: CIMultiDict[str]) -> None:
        self._response_headers = value

    def response_wire(self) -> WireHeaders | None:
        """The response headers as the proxy gave them; None once a fault has read or set ``response_headers``."""
        return self._response_wire if self._response_headers is None else None


def decode_headers(wire: WireHeaders) -> CIMultiDict[str]:
    """Headers as on the wire, decoded byte for byte (latin-1)."""
    return CIMultiDict([(name.decode("latin-1"), value.decode("latin-1")) for name, value in wire])


class Exchange:
    """One fault's view of an exchange: the shared fields of ``data``, and its own rng, sleep,
    state and report. The proxy makes one per selected fault; tests build one with ``Exchange.build``."""

    __slots__ = ("data", "rng", "sleep", "state", "hook", "details", "effect_hook", "effect_at")

    def __init__(self, data: ExchangeData, *, rng: random.Random, sleep: Callable[[float], Awaitable[None]],
                 state: Any = None) -> None:
        self.data = data
        self.rng = rng
        self.sleep = sleep
        self.state = state
        self.hook: Hook | None = None  # the hook running now (set by the proxy)
        self.details: dict[str, Detail] | None = None  # what ``report`` recorded; None: nothing
        self.effect_hook: Hook | None = None  # the hook of the first report
        self.effect_at = 0.0  # seconds from the exchange's start to the first report

    @classmethod
    def build(cls, *, rng: random.Random, now: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
              state: Any = None, **fields: Any) -> Exchange:
        """A view of a fresh exchange (unit tests; one fault alone)."""
        return cls(ExchangeData(now=now, **fields), rng=rng, sleep=sleep, state=state)

    def report(self, **details: Detail) -> None:
        """Record what this fault did (``ex.report(delay_ms=412.3)``); later keys overwrite earlier ones."""
        if self.details is None:
            self.details = {}
            self.effect_hook = self.hook
            self.effect_at = self.data.now() - self.data.started
        self.details.update(details)

    # The shared fields, read through to ``data`` (a write by one fault is seen by the next).

    @property
    def route(self) -> str:
        return self.data.route

    @property
    def request_id(self) -> str:
        return self.data.request_id

    @property
    def method(self) -> str:
        return self.data.method

    @property
    def path(self) -> str:
        return self.data.path

    @property
    def query(self) -> str:
        return self.data.query

    @property
    def client(self) -> str:
        return self.data.client

    @property
    def request_json(self) -> Any:
        return self.data.request_json

    @property
    def now(self) -> Callable[[], float]:
        return self.data.now

    @property
    def request_headers(self) -> CIMultiDict[str]:
        return self.data.request_headers

    @request_headers.setter
    def request_headers(self, value: CIMultiDict[str]) -> None:
        self.data.request_headers = value

    @property
    def status(self) -> int | None:
        return self.data.status

    @status.setter
    def status(self, value: int | None) -> None:
        self.data.status = value

    @property
    def response_headers(self) -> CIMultiDict[str]:
        return self.data.response_headers

    @response_headers.setter
    def response_headers(self, value: CIMultiDict[str]) -> None:
        self.data.response_headers = value
