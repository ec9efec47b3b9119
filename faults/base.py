"""The fault contract (v2): what a fault kind is, what it sees, what it may answer and report.

**A kind** is a frozen dataclass whose fields are its parameters (units in the names:
``delay_ms``, ``bytes_per_s``), validated in ``validate()``; its class docstring is its
catalogue entry. It is registered in ``faults.catalogue``, which refuses (``TypeError`` at
import) a public method named ``on_*``/``wrap_*`` that is not a ``Hook``, and a hook of the
wrong kind (a sync ``on_request``, an async ``on_exchange_end``).

**Hooks** (``Hook``), in the order the proxy calls them:

* ``on_connection``  — once per accepted client connection, before its first request is read.
  Nothing of a request is known: such a fault matches only on ``probability`` and the
  counts (which count connections), and only this hook of it runs. ``Reset`` closes the
  connection (RST, or FIN when graceful); ``Respond`` writes that answer and closes.
* ``on_request``     — request head known, nothing sent upstream (delay, answer, rewrite headers).
* ``on_response``    — upstream's head in ``ex.status``/``ex.response_headers``, nothing sent
  to the client yet (delay, rewrite headers, replace, reset).
* ``wrap_request_body`` / ``wrap_response_body`` — transform the chunk stream (throttle,
  truncate, corrupt, pace, rewrite).
* ``on_exchange_end`` — sync, in the proxy's ``finally``: exactly once per selected fault
  that declares it, however the exchange ended (answered, answered by another fault, client
  gone, upstream failed, aborted), with the final status in ``ex.status`` (499 for a reset).

The hooks a fault uses are an instance property, ``hooks()``: by default those its class
overrides; a kind narrows it by its parameters (``reset`` at phase ``request`` uses only
``on_request``). The proxy computes it once when the fault is added or changed, never per
request, and calls nothing else.

**Outcomes.** ``on_*`` hooks return ``PROCEED``, ``Respond`` or ``Reset``; the first
non-``Proceed`` outcome wins. ``AbortExchange(Reset(...))`` is the one way to abort: body
wrappers raise it, hooks may raise it or return the ``Reset``. The proxy handles it in one
place: what was written is flushed, then the connection is reset (RST) or closed (FIN).

**Body edits are declared.** ``request_body_edit``/``response_body_edit`` (class attributes,
refined per exchange by ``request_edit(ex)`` after ``on_request`` and ``response_edit(ex)``
after ``on_response``) say what a wrapper does to the bytes: ``NONE`` (the same bytes, maybe
slower or cut short: the declared or fault-set Content-Length stays), ``REWRITE`` (a new whole
document: the proxy drops Content-Length and, when the original length is known and at most
8 MiB, buffers to send an exact one; otherwise chunked), ``STREAM`` (new bytes that must keep
flowing, e.g. SSE: chunked, close-delimited to HTTP/1.0 clients, never buffered). Stacked
faults: the strongest wins (STREAM > REWRITE > NONE). Faults never drop Content-Length to
say they rewrite (setting a shorter one, as ``truncate`` does, is a NONE edit).

**Each fault has its own view** (``Exchange``) of the shared ``ExchangeData``: the request
and response fields are shared (a rewrite by one fault is seen by the next), but ``ex.rng``
(the fault's seeded generator), ``ex.sleep`` (woken when the fault is removed), ``ex.state``
and ``ex.report`` are the fault's own, so stacked faults draw exactly as each does alone.
Faults never touch ``random``, ``time`` or ``asyncio.sleep``: they use ``ex.rng``,
``ex.now()`` and ``ex.sleep()``, which tests replace with a seeded rng and a fake clock.

**State across requests** lives outside the frozen parameters: ``new_state()`` is called
once when the fault is added and its result is ``ex.state`` in every exchange; a PATCH keeps
the state object and calls the new parameters' ``reconfigure_state(state)``.

**Stateful kinds** (``stateful = True``: a budget or a queue shared by every request they
see, such as ``rate_limit``) refuse the counting parts of a match (``probability``,
``first_n``, ``every_nth``, ``max_injections``): requests they skipped would bypass the budget.
Path, method, header and body conditions still choose which requests share it.

**The request's JSON body** is parsed for a fault only when it needs it: a match with a body
condition, or ``needs_request_json()`` true (``rate_limit`` reads ``max_tokens``). Then
``ex.request_json`` is the parsed body (or not set when it is not JSON).

**Reports.** ``ex.report(delay_ms=412.3)`` records what the fault did (flat details: str,
int, float, bool; later keys overwrite). The proxy makes one ``FaultEffect`` record per fault
per exchange of them, for the ``fault_injected`` log event, the metrics and the route's
observers. A fault that refuses a request for lack of capacity reports ``rejected=<reason>``
(``rate_limit``: ``requests``/``tokens``; ``concurrency_limit``: ``queue_full``/``queue_timeout``),
which the proxy counts in ``brownout_fault_rejections_total``; a state with ``queue_depth`` and
``in_flight`` is exported as gauges.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict

if TYPE_CHECKING:
    from faults.exchange import Exchange


class Hook(StrEnum):
    """The hooks a fault may implement; the value is the method's name."""

    ON_CONNECTION = "on_connection"
    ON_REQUEST = "on_request"
    ON_RESPONSE = "on_response"
    WRAP_REQUEST_BODY = "wrap_request_body"
    WRAP_RESPONSE_BODY = "wrap_response_body"
    ON_EXCHANGE_END = "on_exchange_end"


ASYNC_HOOKS = frozenset({Hook.ON_CONNECTION, Hook.ON_REQUEST, Hook.ON_RESPONSE})


class BodyEdit(StrEnum):
    """What a body wrapper does to the bytes (see the module docstring)."""

    NONE = "none"
    REWRITE = "rewrite"
    STREAM = "stream"

    @staticmethod
    def strongest(edits: Iterable[BodyEdit]) -> BodyEdit:
        best = BodyEdit.NONE
        for edit in edits:
            if _STRENGTH[edit] > _STRENGTH[best]:
                best = edit
        return best


_STRENGTH = {BodyEdit.NONE: 0, BodyEdit.REWRITE: 1, BodyEdit.STREAM: 2}


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
    """Close the client connection without (the rest of) a response: RST, or FIN when ``graceful``."""

    graceful: bool = False


Outcome = Proceed | Respond | Reset
PROCEED = Proceed()


class AbortExchange(Exception):  # noqa: N818 (control flow, not an error: outside the error tree)
    """Abort the exchange as ``reset`` says, after flushing what was written (raise it anywhere in a fault)."""

    def __init__(self, reset: Reset = Reset(), reason: str = "") -> None:
        super().__init__(reason or ("closed (FIN)" if reset.graceful else "reset (RST)"))
        self.reset = reset


@dataclass(frozen=True)
class Fault:
    """Base of every HTTP fault kind (see the module docstring for the contract)."""

    kind: ClassVar[str] = ""
    stateful: ClassVar[bool] = False  # refuses count and probability matches (see the module docstring)
    request_body_edit: ClassVar[BodyEdit] = BodyEdit.NONE
    response_body_edit: ClassVar[BodyEdit] = BodyEdit.NONE
    # Parsing of parameters from JSON/YAML: unknown parameters are errors, never ignored.
    __pydantic_config__ = ConfigDict(extra="forbid")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the parameter when a value is out of range."""

    # -- the hooks (a kind overrides those it needs)

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

    def on_exchange_end(self, ex: Exchange) -> None:
        return None

    # -- what the proxy asks (once per fault, or once per exchange for the edits)

    def hooks(self) -> frozenset[Hook]:
        """The hooks this fault uses: by default those its class overrides."""
        return class_hooks(type(self))

    def request_edit(self, ex: Exchange) -> BodyEdit:
        """What ``wrap_request_body`` does to the bytes of this exchange (asked after ``on_request``)."""
        return self.request_body_edit

    def response_edit(self, ex: Exchange) -> BodyEdit:
        """What ``wrap_response_body`` does to the bytes of this exchange (asked after ``on_response``)."""
        return self.response_body_edit

    def needs_request_json(self) -> bool:
        """Whether this fault reads ``ex.request_json`` (the proxy then parses the request body)."""
        return False

    def new_state(self) -> Any:
        """State kept across exchanges (``ex.state``), made once when the fault is added; None: none."""
        return None

    def reconfigure_state(self, state: Any) -> None:
        """Adapt the kept ``state`` to these (new) parameters after a PATCH."""

    # -- introspection (the catalogue)

    @classmethod
    def summary(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "").split("\n", 1)[0]

    def params(self) -> dict[str, Any]:
        """Parameters as plain JSON-able values (what the admin API shows)."""
        return _plain(dataclasses.asdict(self))


def class_hooks(cls: type[Fault]) -> frozenset[Hook]:
    """The hooks ``cls`` overrides."""
    return frozenset(h for h in Hook if getattr(cls, h) is not getattr(Fault, h))


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
