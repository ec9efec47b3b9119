"""The stream-toxic contract: Toxiproxy-style toxics over one direction of a byte pipe.

A toxic kind is a frozen dataclass whose fields are Toxiproxy's attributes, in Toxiproxy's
own units (``latency`` in ms, ``rate`` in KB/s, ``delay`` of slicer in µs) and types (ints).
Its class docstring is its catalogue entry.

The relay runs, per connection and per direction (a *link*), one ``Stage`` per toxic.
A stage receives the link's chunks in order (each stamped with the time it was received)
and passes what it lets through to ``emit``; it may delay, split, drop, or end the link by
raising ``CloseLink`` (normal close, FIN) or ``CloseLink(reset=True)`` (abortive close, RST).

Stages never touch ``random``, ``time`` or ``asyncio.sleep``: the link hands them a
``StageContext`` with ``rng``, ``now()`` and ``sleep()``. ``sleep`` returns False when the
stage was interrupted (its toxic updated or removed): Toxiproxy's rule is that an
interrupted stage releases what it holds at once and never drops data.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from faults.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from the source in one read, stamped with the (possibly delayed) time."""

    data: bytes
    ts: float


Emit = Callable[[Chunk], Awaitable[None]]


class CloseLink(Exception):
    """Raised by a stage to end the connection: FIN, or RST when ``reset``."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__("reset" if reset else "close")
        self.reset = reset


class StageContext(Protocol):
    """What a stage sees of its link: a clock, a sleep, and a seeded random source."""

    rng: random.Random

    def now(self) -> float:
        """Monotonic seconds."""

    async def sleep(self, seconds: float) -> bool:
        """Sleep; False when interrupted early (toxic updated or removed)."""

    async def hold(self, seconds: float) -> None:
        """Sleep that an update or removal does not cut short."""


class Stage:
    """One toxic running on one link. The default stage passes everything through."""

    # Absolute ``now()`` at which ``on_deadline`` must run if no chunk arrives first.
    deadline: float | None = None
    # Removing the toxic ends the connection (Toxiproxy's timeout toxic does this).
    close_on_remove: bool = False

    async def push(self, chunk: Chunk, ctx: StageContext, emit: Emit) -> None:
        await emit(chunk)

    async def eof(self, ctx: StageContext) -> None:
        """The source closed; queued chunks are already out. Delay or reset here."""

    async def on_deadline(self, ctx: StageContext) -> None:
        """``deadline`` passed with no chunk."""


PASS = Stage()


class AttributeDecodeError(InvalidInput):
    """An attribute of the wrong JSON type (Toxiproxy answers ``bad request body: ...``)."""


@dataclass(frozen=True)
class Toxic:
    """Base of every toxic kind (see the module docstring for the contract)."""

    type: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise InvalidInput for values that would crash or hang the relay."""

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        """A new stage for one link. ``previous`` is this toxic's former stage on the link
        (before an update), for toxics whose state outlives updates (limit_data)."""
        return PASS

    def attributes(self) -> dict[str, int]:
        """Every attribute with its value, as the Toxiproxy API shows them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def summary(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "").split("\n", 1)[0]

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any] | None, base: Toxic | None = None) -> Toxic:
        """Build from JSON attributes the way Toxiproxy decodes them: keys match
        case-insensitively, unknown keys are ignored, ``null`` keeps the current value,
        and anything but an integer is an error. ``base`` supplies values not given
        (partial update); without it the defaults (0) apply."""
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, Mapping):
            raise AttributeDecodeError(
                f"json: cannot unmarshal {_json_kind(attributes)} into Go struct field "
                f"toxic.attributes of type {cls.__name__}", "attributes")
        by_lower = {f.name.lower(): f.name for f in dataclasses.fields(cls)}
        values: dict[str, int] = base.attributes() if base is not None else {}
        for key, value in attributes.items():
            field = by_lower.get(str(key).lower())
            if field is None or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise AttributeDecodeError(
                    f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                    f"{cls.__name__}.{field} of type int64", f"attributes.{field}")
            if not -(2**63) <= value < 2**63:
                raise AttributeDecodeError(f"json: cannot unmarshal number {value} into Go struct field "
                                           f"{cls.__name__}.{field} of type int64", f"attributes.{field}")
            values[field] = value
        return cls(**values)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "null"


def require(condition: bool, field: str, message: str) -> None:
    """Attribute validation: ``require(self.rate >= 0, "rate", "must be >= 0")``."""
    if not condition:
        raise InvalidInput(message, f"attributes.{field}")


def roll(toxicity: float, rng: random.Random) -> bool:
    """Toxiproxy's per-link decision: the toxic runs when a uniform draw < toxicity."""
    if toxicity >= 1:
        return True
    if toxicity <= 0:
        return False
    return rng.random() < toxicity
