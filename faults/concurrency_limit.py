"""concurrency_limit: a model server with N slots and a bounded queue, answering 503/529 when full."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from faults.base import PROCEED, Fault, Hook, Outcome, Respond, require
from faults.capacity_styles import Style, overload_response, pick_style
from faults.exchange import Exchange

_EARLY_MS = 1.0  # a timer may fire a hair early; earlier than this is a removal's wake-up


class Ticket:
    """One exchange's place: holding a slot (``granted``) or waiting for one."""

    __slots__ = ("granted", "woken")

    def __init__(self, granted: bool) -> None:
        self.granted = granted
        self.woken: asyncio.Future[None] | None = None  # set while the exchange waits


class SlotQueue:
    """At most ``limit`` slots held; up to ``max_queue`` waiters, granted in arrival order.

    Synchronous and clock-free: a slot passes to the first waiter inside ``release``, so no
    slot is ever between owners, and a waiter that leaves is taken out of the line at once.
    """

    def __init__(self, limit: int, max_queue: int) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self.in_flight = 0
        self.waiting: deque[Ticket] = deque()

    @property
    def queue_depth(self) -> int:
        return len(self.waiting)

    def acquire(self) -> Ticket | None:
        """A granted ticket, a waiting one, or None when the queue is full."""
        if self.in_flight < self.limit and not self.waiting:
            self.in_flight += 1
            return Ticket(True)
        if len(self.waiting) >= self.max_queue:
            return None
        ticket = Ticket(False)
        self.waiting.append(ticket)
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """The ticket's exchange is over: free its slot, or its place in the line."""
        if ticket.granted:
            ticket.granted = False  # released once, whatever calls it twice
            self.in_flight -= 1
            self._grant()
        else:
            try:
                self.waiting.remove(ticket)
            except ValueError:
                pass

    def resize(self, limit: int, max_queue: int) -> None:
        """New limits (a PATCH): waiters stay in line; more slots are granted at once."""
        self.limit, self.max_queue = limit, max_queue
        self._grant()

    def _grant(self) -> None:
        while self.waiting and self.in_flight < self.limit:
            ticket = self.waiting.popleft()
            ticket.granted = True
            self.in_flight += 1
            if ticket.woken is not None and not ticket.woken.done():
                ticket.woken.set_result(None)


class ConcurrencyState:
    """What a concurrency_limit keeps across requests (and a PATCH): its slots and line."""

    def __init__(self, queue: SlotQueue) -> None:
        self.queue = queue
        self.tickets: dict[Exchange, Ticket] = {}  # by exchange view, until it ends

    @property
    def queue_depth(self) -> int:
        return self.queue.queue_depth

    @property
    def in_flight(self) -> int:
        return self.queue.in_flight


@dataclass(frozen=True)
class ConcurrencyLimitFault(Fault):
    """Let at most ``max_concurrent`` requests be in flight upstream; queue, then refuse, the rest.

    Why realistic: model servers run a fixed number of requests at once (batch slots, KV-cache
    space) and queue the rest in a bounded queue (Triton's ``max_queue_size`` and queue
    timeout, TGI's "Model is overloaded", Anthropic's 529 ``overloaded_error``); past it they
    refuse, and clients that retry at once make it worse. A request holds its slot until its
    answer is fully sent (or the client leaves). ``max_queue``: how many may wait for a slot,
    in arrival order (0: none wait); ``max_queue_ms``: the longest wait (none: until a slot
    frees or the client gives up). A request beyond the queue (``queue_full``) or that waited
    too long (``queue_timeout``) is refused in ``style``: ``anthropic`` (529
    ``{"type": "error", "error": {"type": "overloaded_error", ...}}``), ``openai`` (503 with an
    OpenAI error object), ``triton`` (503 ``{"error": "Exceeds maximum queue size"}``),
    ``plain`` (503 JSON), or ``auto``, by path: ``/v1/messages`` → anthropic,
    ``/v1/chat/completions`` and ``/v1/completions`` → openai, ``/v2/models/...`` → triton,
    else plain. ``retry_after_s``: add ``Retry-After`` to refusals. The proxy exports the queue
    depth and slots in use as ``brownout_fault_queue_depth`` and ``brownout_fault_in_flight``,
    and counts refusals in ``brownout_fault_rejections_total`` by reason. Stateful: it takes
    no probability or count match, and a PATCH keeps the slots and the line.
    """

    kind = "concurrency_limit"
    stateful = True

    max_concurrent: int = 1
    max_queue: int = 0
    max_queue_ms: float | None = None
    style: Style = "auto"
    retry_after_s: int | None = None

    def validate(self) -> None:
        require(1 <= self.max_concurrent <= 1_000_000, "max_concurrent", f"must be >= 1 and <= 1000000, got {self.max_concurrent}")
        require(0 <= self.max_queue <= 1_000_000, "max_queue", f"must be >= 0 and <= 1000000, got {self.max_queue}")
        require(self.max_queue_ms is None or 0 <= self.max_queue_ms <= 86_400_000, "max_queue_ms",
                f"must be >= 0 and <= 86400000 (a day), got {self.max_queue_ms}")
        require(self.retry_after_s is None or 0 <= self.retry_after_s <= 86_400, "retry_after_s",
                f"must be >= 0 and <= 86400, got {self.retry_after_s}")

    def new_state(self) -> ConcurrencyState:
        return ConcurrencyState(SlotQueue(self.max_concurrent, self.max_queue))

    def reconfigure_state(self, state: Any) -> None:
        state.queue.resize(self.max_concurrent, self.max_queue)

    def hooks(self) -> frozenset[Hook]:
        return frozenset({Hook.ON_REQUEST, Hook.ON_EXCHANGE_END})

    async def on_request(self, ex: Exchange) -> Outcome:
        state: ConcurrencyState = ex.state
        ticket = state.queue.acquire()
        if ticket is None:
            return self._refuse(ex, "queue_full", 0.0)
        state.tickets[ex] = ticket
        if ticket.granted:
            return PROCEED
        started = ex.now()
        await self._wait(ex, ticket)
        waited_ms = (ex.now() - started) * 1000.0
        if ticket.granted:
            ex.report(queued_ms=round(waited_ms, 3))
            return PROCEED
        state.queue.leave(ticket)
        if self.max_queue_ms is None or waited_ms < self.max_queue_ms - _EARLY_MS:
            return PROCEED  # woken before the deadline without a slot: the fault was removed
        return self._refuse(ex, "queue_timeout", waited_ms)

    def on_exchange_end(self, ex: Exchange) -> None:
        state: ConcurrencyState = ex.state
        ticket = state.tickets.pop(ex, None)
        if ticket is not None:
            state.queue.leave(ticket)

    async def _wait(self, ex: Exchange, ticket: Ticket) -> None:
        """Until the ticket is granted, ``max_queue_ms`` passes, or the fault is removed."""
        woken = ticket.woken = asyncio.get_running_loop().create_future()
        timeout_s = self.max_queue_ms / 1000.0 if self.max_queue_ms is not None else math.inf
        timer = asyncio.ensure_future(ex.sleep(timeout_s))
        try:
            await asyncio.wait((woken, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            ticket.woken = None

    def _refuse(self, ex: Exchange, reason: str, waited_ms: float) -> Respond:
        answer = self._answers[(pick_style(self.style, ex.path), reason)]
        ex.report(status=answer.status, rejected=reason, queued_ms=round(waited_ms, 3))
        return answer

    @cached_property
    def _answers(self) -> dict[tuple[str, str], Respond]:
        """Built once: the answer depends only on the style and the reason."""
        return {(style, reason): overload_response(style, reason, self.retry_after_s)  # type: ignore[arg-type]
                for style in ("anthropic", "openai", "triton", "plain") for reason in ("queue_full", "queue_timeout")}
