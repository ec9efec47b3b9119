"""What the data path tells those who watch it: one record per fault per exchange, one per exchange.

An http route holds a list of ``ExchangeObserver`` (empty by default: then nothing is built
for an exchange no fault touched). Tracing plugs in here; recording, which follows every
exchange it samples, has a thinner path of its own (``proxy.recording.capture``). Observers are called
synchronously on the data path, so they must be quick (queue, don't do I/O); an exception
from one is logged and the exchange carries on.

An observer that wants more than the end of an exchange returns an ``ExchangeTap`` from
``exchange_started`` (or None for an exchange it does not sample); one that samples says no
earlier and cheaper in ``follows``. With no tap open and no observer overriding
``exchange_ended``, the end of an exchange builds nothing either. A tap sees the request
head as the client sent it, may add headers to what goes upstream (a ``traceparent``), learns
when upstream answered, and sees the response head and body bytes exactly as the client got
them (after every fault) and, when ``wants_bodies``, the client's request body. The route
builds nothing for an exchange no tap asked for (``proxy.taps``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import SupportsIndex

from faults import Hook
from faults.exchange import Detail


@dataclass(frozen=True, slots=True)
class FaultEffect:
    """What one fault did to one exchange (or, for a connection-phase fault, one connection).

    ``hook``: where it first reported (None: selected, but it reported nothing, e.g. a stream
    fault on a response that is not an event stream). ``at_s``: seconds from the start of the
    exchange to that report. ``details``: what it reported (``delay_ms``, ``status``, ``bytes_cut``...).
    """

    fault_id: str
    kind: str
    route: str
    request_id: str
    hook: Hook | None
    at_s: float
    details: Mapping[str, Detail]


@dataclass(slots=True)  # read-only by contract; not frozen: built per exchange, and frozen init costs 0.6 µs more
class ExchangeEnd:
    """One exchange as it ended: ``status`` is what the client got (499: reset, or the client left)."""

    route: str
    request_id: str
    method: str
    path: str
    status: int
    started_at: float  # wall clock (epoch seconds)
    duration_s: float
    effects: tuple[FaultEffect, ...]


@dataclass(slots=True)  # read-only by contract, as ExchangeEnd
class ExchangeStart:
    """An exchange begins: the request head as the client sent it."""

    route: str
    request_id: str
    method: str
    target: str  # the path with its query, as sent
    headers: Sequence[tuple[bytes, bytes]]
    client: str
    started_at: float  # wall clock (epoch seconds)
    http_version: str = "1.1"  # as the client spoke: "1.1" or "1.0"


class ExchangeTap:
    """One observer's hooks into one exchange it asked for. Every method may be left as it is."""

    __slots__ = ()  # a tap with slots of its own then has no __dict__ (one per followed exchange)
    wants_bodies = False  # True: ``request_piece`` sees the client's request body

    def upstream_request(self, headers: list[tuple[bytes, bytes]]) -> None:
        """The request is about to go upstream with ``headers`` (``Host`` is added after); a tap may append to them."""

    def upstream_answered(self, status: int | None, cause: str | None) -> None:
        """Upstream's response head arrived (``status``), or the call failed (``cause``: refused, timeout...)."""

    def request_piece(self, piece: bytes) -> None:
        """A piece of the client's request body, as the client sent it."""

    def response_head(self, status: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
        """The response head as it was written to the client (framing headers included)."""

    def response_piece(self, piece: bytes) -> None:
        """A piece of the response body as it was written to the client (unframed)."""

    def ended(self, end: ExchangeEnd) -> None:
        """The exchange ended: the last call a tap gets."""


class ObserverList(list["ExchangeObserver"]):
    """A route's observers: a list that knows whether one of them wants the end of every exchange
    (``watch_all``), so an exchange nobody follows does not even ask, and whether any samples in
    ``follows`` (``follow_all``: none does, so none is asked). Both are on every request's path."""

    watch_all = False
    follow_all = False  # no observer decides in ``follows``: every exchange is offered to all of them
    counted: ExchangeObserver | None = None  # the route's only observer, when it samples by countdown

    def _changed(self) -> None:
        self.watch_all = any(type(o).exchange_ended is not ExchangeObserver.exchange_ended for o in self)
        self.follow_all = all(type(o).follows is ExchangeObserver.follows for o in self)
        self.counted = self[0] if len(self) == 1 and self[0].counts_down else None

    def append(self, observer: ExchangeObserver) -> None:
        super().append(observer)
        self._changed()

    def extend(self, observers: Iterable[ExchangeObserver]) -> None:
        super().extend(observers)
        self._changed()

    def __iadd__(self, observers: Iterable[ExchangeObserver]) -> ObserverList:  # type: ignore[override]
        super().__iadd__(observers)
        self._changed()
        return self

    def insert(self, index: SupportsIndex, observer: ExchangeObserver) -> None:
        super().insert(index, observer)
        self._changed()

    def remove(self, observer: ExchangeObserver) -> None:
        super().remove(observer)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()


class ExchangeObserver:
    """Watches a route's exchanges. The default methods do nothing; override what you need.

    ``counts_down``: the observer samples new exchanges (those without a ``traceparent``) by a
    countdown, ``until_sampled`` (the new exchanges to go, this one included, until the next it
    follows). When it is a route's only observer, the route counts down inline and calls
    ``follows`` only for an exchange that reaches 1 or carries a ``traceparent``; ``follows``
    then does that exchange's count itself. A call per request would cost more than the decision.
    """

    counts_down = False
    until_sampled = 1

    def fault_effect(self, effect: FaultEffect) -> None:
        """A fault's effect is known (at the end of its exchange, or when a connection fault acted)."""

    def exchange_ended(self, end: ExchangeEnd) -> None:
        """An exchange ended (every exchange of the route, faulted or not)."""

    def follows(self, headers: Sequence[tuple[bytes, bytes]], traceparent: bytes) -> bool:
        """A first look at a request head, before anything is built for the exchange: False, and
        ``exchange_started`` is not called for it, so an observer that samples pays only for its own
        decision on the exchanges it leaves. ``traceparent``: the client's W3C ``traceparent`` value
        (b"" when it sent none), found in the proxy's own pass over the headers, so a parent-based
        decision needs no scan. A True is followed at once by ``exchange_started`` for the same
        exchange (on the same thread: a decision may be kept until then)."""
        return True

    def exchange_started(self, start: ExchangeStart) -> ExchangeTap | None:
        """An exchange begins: return a tap to follow it, or None (the default) not to."""
        return None
