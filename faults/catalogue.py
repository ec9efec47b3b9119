"""The registry: every fault kind, in one explicit list, and building one from JSON."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from faults.base import ASYNC_HOOKS, Fault, Hook
from faults.concurrency_limit import ConcurrencyLimitFault
from faults.corrupt import CorruptFault
from faults.down import DownFault
from faults.error import ErrorFault
from faults.errors import InvalidInput
from faults.hang import HangFault
from faults.latency import LatencyFault
from faults.match import MATCH_ALL, Match
from faults.rate_limit import RateLimitFault
from faults.ml.crossed_responses import CrossedResponsesFault
from faults.ml.default_features import DefaultFeaturesFault
from faults.ml.missing_features import MissingFeaturesFault
from faults.ml.model_version_skew import ModelVersionSkewFault
from faults.ml.nan_tensor import NanTensorFault
from faults.ml.schema_drift import SchemaDriftFault
from faults.ml.score_corruption import ScoreCorruptionFault
from faults.ml.stale_features import StaleFeaturesFault
from faults.ml.wrong_shape import WrongShapeFault
from faults.reset import ResetFault
from faults.stream import StreamFault
from faults.throttle import ThrottleFault
from faults.truncate import TruncateFault
from faults.units import check_numbers
from faults.validation import validate

# One explicit list: adding a kind means adding its module and one line here.
KINDS: tuple[type[Fault], ...] = (
    LatencyFault,
    ErrorFault,
    ResetFault,
    HangFault,
    DownFault,
    TruncateFault,
    ThrottleFault,
    CorruptFault,
    # capacity: stateful budgets and queues shared by the requests they match
    RateLimitFault,
    ConcurrencyLimitFault,
    # ML-aware kinds (faults/ml/) and LLM stream faults
    MissingFeaturesFault,
    DefaultFeaturesFault,
    StaleFeaturesFault,
    NanTensorFault,
    SchemaDriftFault,
    WrongShapeFault,
    ScoreCorruptionFault,
    CrossedResponsesFault,
    ModelVersionSkewFault,
    StreamFault,
)

_HOOK_NAMES = frozenset(h.value for h in Hook)


def check_kind(cls: type[Fault]) -> None:
    """Refuse a kind whose hooks cannot work: a misspelt hook would otherwise never run, silently."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__}: a fault kind needs a non-empty 'kind' name")
    for name, member in inspect.getmembers(cls):
        if name.startswith(("on_", "wrap_")) and name not in _HOOK_NAMES:
            raise TypeError(f"{cls.__name__}.{name}: not a hook (hooks: {', '.join(sorted(_HOOK_NAMES))})")
    for hook in Hook:
        if inspect.iscoroutinefunction(getattr(cls, hook)) != (hook in ASYNC_HOOKS):
            want = "async" if hook in ASYNC_HOOKS else "a plain (sync) method"
            raise TypeError(f"{cls.__name__}.{hook}: must be {want}")


_BY_NAME: dict[str, type[Fault]] = {}


def register(cls: type[Fault]) -> type[Fault]:
    """Check ``cls`` and make it buildable by name (every kind of ``KINDS`` is, at import)."""
    check_kind(cls)
    if cls.kind in _BY_NAME and _BY_NAME[cls.kind] is not cls:
        raise TypeError(f"{cls.__name__}: kind {cls.kind!r} is taken by {_BY_NAME[cls.kind].__name__}")
    _BY_NAME[cls.kind] = cls
    return cls


for _kind in KINDS:
    register(_kind)


def known_kinds() -> list[str]:
    return sorted(_BY_NAME)


def kind_class(name: str) -> type[Fault]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InvalidInput(f"unknown fault type {name!r}; known types: {', '.join(known_kinds())}", "type") from None


@cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def parse_model(cls: type, data: Any, field: str) -> Any:
    """Validate ``data`` into ``cls`` (a pydantic-compatible dataclass); errors name dotted fields.

    Numbers must be finite and in range both as given and as parsed (pydantic turns the
    string ``"inf"`` into a float), so a NaN delay or count never reaches a fault.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidInput(f"must be an object, got {type(data).__name__}", field)
    check_numbers(data, field)
    parsed = validate(cls, dict(data), field)
    check_numbers(parsed, field)
    return parsed


def build_fault(kind: str, params: Mapping[str, Any] | None) -> Fault:
    """Build a validated fault of ``kind``; unknown parameters are named, never ignored."""
    return parse_model(kind_class(kind), params, "params")


def build_match(data: Mapping[str, Any] | None) -> Match:
    return MATCH_ALL if not data else parse_model(Match, data, "match")


_COUNTING = ("probability", "first_n", "every_nth", "max_injections")


def check_match(fault: Fault, match: Match) -> None:
    """Refuse a match that cannot compose with ``fault``: a stateful kind keeps one budget (or
    queue) for every request it matches, so skipping some by chance or by count would let
    them bypass it."""
    if not type(fault).stateful:
        return
    for key in _COUNTING:
        value = getattr(match, key)
        if value is not None and not (key == "probability" and value == 1.0):
            raise InvalidInput(f"{fault.kind} keeps one budget for every request it matches, so it takes no "
                               f"{key}; choose its requests with methods, path, headers or body", f"match.{key}")


def describe(cls: type[Fault]) -> dict[str, Any]:
    """Catalogue entry: name, docstring and parameter schema, all read from the code."""
    schema = _adapter(cls).json_schema()
    return {
        "type": cls.kind,
        "summary": cls.summary(),
        "doc": inspect.cleandoc(cls.__doc__ or ""),
        "params": schema.get("properties", {}),
    }
