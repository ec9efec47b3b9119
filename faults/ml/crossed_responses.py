"""crossed_responses: a client gets the answer to someone else's request, as a broken cache serves it."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, ClassVar

from faults.base import require
from faults.exchange import Exchange
from faults.ml.jsonbody import JsonResponseFault
from faults.ml.protocols import Protocol

_MAX_KEYS = 64  # routes × paths remembered; the least recently used is forgotten
Recent = OrderedDict[tuple[str, ...], deque[bytes]]


@dataclass(frozen=True)
class CrossedResponsesFault(JsonResponseFault):
    """Cross responses: answer with another recent request's response body, as a broken cache would.

    Why realistic: OpenAI, 20 Mar 2023 — a redis-py connection corrupted by a cancelled
    request handed the *next* user the previous user's reply, with normal status codes;
    LLMPerf checks for exactly this "request A gets the responses for request B".
    Only an echo of the request id or a nonce catches it.
    Each matching response body is remembered in a small bounded buffer (``buffer_size``
    bodies per route and path, bodies up to 1 MiB); the client gets a different body from
    that buffer, chosen with the seeded rng. The first request (nothing to cross with yet)
    and repeats of an identical body pass unchanged. ``same_path``: cross only between
    requests for the same method and path (default), or across the whole route.
    """

    kind = "crossed_responses"
    max_body_bytes: ClassVar[int] = 1024 * 1024

    buffer_size: int = 8
    same_path: bool = True

    def validate(self) -> None:
        require(1 <= self.buffer_size <= 1024, "buffer_size", f"must be between 1 and 1024, got {self.buffer_size}")

    # The recent bodies are the fault's state across exchanges (``ex.state``): kept when a
    # PATCH changes the parameters, resized to a new ``buffer_size``.

    def new_state(self) -> Recent:
        return OrderedDict()

    def reconfigure_state(self, state: Recent) -> None:
        for key, bodies in state.items():
            if bodies.maxlen != self.buffer_size:
                state[key] = deque(bodies, maxlen=self.buffer_size)

    def _recent(self, store: Recent, key: tuple[str, ...]) -> deque[bytes]:
        bodies = store.pop(key, None)
        if bodies is None:
            bodies = deque(maxlen=self.buffer_size)
        store[key] = bodies
        while len(store) > _MAX_KEYS:
            store.popitem(last=False)
        return bodies

    def transform(self, raw: bytes, ex: Exchange) -> bytes:
        key = (ex.route, ex.method, ex.path) if self.same_path else (ex.route,)
        bodies = self._recent(ex.state, key)
        others = [body for body in bodies if body != raw]
        bodies.append(raw)
        ex.report(crossed=bool(others))
        return ex.rng.choice(others) if others else raw

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        return 0  # works on raw bodies (see ``transform``): any 2xx body can be crossed
