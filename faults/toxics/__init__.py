"""Toxiproxy-style stream toxics for tcp routes: the contract and one explicit registry."""

from __future__ import annotations

from faults.errors import InvalidInput
from faults.toxics.bandwidth import BandwidthToxic
from faults.toxics.base import (
    PASS,
    AttributeDecodeError,
    Chunk,
    CloseLink,
    Emit,
    Stage,
    StageContext,
    Toxic,
    roll,
)
from faults.toxics.latency import LatencyToxic
from faults.toxics.limit_data import LimitDataToxic
from faults.toxics.noop import NoopToxic
from faults.toxics.reset_peer import ResetPeerToxic
from faults.toxics.slicer import SlicerToxic
from faults.toxics.slow_close import SlowCloseToxic
from faults.toxics.timeout import TimeoutToxic

# One explicit list: adding a toxic means adding its module and one line here.
TOXICS: tuple[type[Toxic], ...] = (
    LatencyToxic,
    BandwidthToxic,
    SlowCloseToxic,
    TimeoutToxic,
    ResetPeerToxic,
    SlicerToxic,
    LimitDataToxic,
    NoopToxic,
)

_BY_TYPE: dict[str, type[Toxic]] = {t.type: t for t in TOXICS}


def known_toxics() -> list[str]:
    return sorted(_BY_TYPE)


def toxic_class(type_name: str) -> type[Toxic]:
    try:
        return _BY_TYPE[type_name]
    except KeyError:
        raise InvalidInput(f"invalid toxic type {type_name!r}; known types: {', '.join(known_toxics())}", "type") from None


def is_toxic_type(type_name: object) -> bool:
    return isinstance(type_name, str) and type_name in _BY_TYPE


__all__ = [
    "PASS", "TOXICS", "AttributeDecodeError", "BandwidthToxic", "Chunk", "CloseLink", "Emit",
    "LatencyToxic", "LimitDataToxic", "NoopToxic", "ResetPeerToxic", "SlicerToxic", "SlowCloseToxic",
    "Stage", "StageContext", "TimeoutToxic", "Toxic", "is_toxic_type", "known_toxics", "roll", "toxic_class",
]
