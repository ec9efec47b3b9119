"""catalogue: every kind registered, documented, buildable, and round-trips its params."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from faults.base import PROCEED, Fault, Hook, Outcome, class_hooks
from faults.catalogue import KINDS, build_fault, check_kind, describe, kind_class, known_kinds
from faults.errors import InvalidInput
from faults.exchange import Exchange

GOOD = {
    "latency": {"delay_ms": 100, "jitter_ms": 20},
    "error": {"status": 429, "headers": {"Retry-After": "3"}},
    "reset": {"after_bytes": 10},
    "hang": {"deadline_ms": 1000, "then": "504"},
    "down": {"mode": "503", "retry_after_s": 5},
    "truncate": {"fraction": 0.5, "content_length": "corrected"},
    "throttle": {"bytes_per_s": 1024},
    "corrupt": {"ops": [{"op": "nan", "path": "$.predictions[*][0]"}]},
    "missing_features": {"mode": "not_found", "features": ["conv_rate"]},
    "default_features": {"default_value": 0},
    "stale_features": {"age_s": 3600, "status": "OUTSIDE_MAX_AGE"},
    "nan_tensor": {"value": "nan", "fraction": 0.5},
    "schema_drift": {"mode": "rename", "path": "$.predictions", "new_name": "outputs"},
    "wrong_shape": {"mode": "truncate", "count": 1},
    "score_corruption": {"mode": "power", "exponent": 2},
    "crossed_responses": {"buffer_size": 8},
    "model_version_skew": {"version": "1"},
    "stream": {"first_event_delay_ms": 300, "cut_after_events": 5},
    "rate_limit": {"requests_per_minute": 600, "tokens_per_minute": 90_000, "burst": 10, "key": "header:Authorization"},
    "concurrency_limit": {"max_concurrent": 4, "max_queue": 8, "max_queue_ms": 500, "style": "anthropic"},
}


def test_all_http_kinds_registered() -> None:
    assert known_kinds() == sorted(GOOD)
    assert len({k.kind for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_build_describe_and_round_trip(kind: str) -> None:
    fault = build_fault(kind, GOOD[kind])
    assert isinstance(fault, kind_class(kind)) and fault.kind == kind
    assert build_fault(kind, fault.params()) == fault
    entry = describe(type(fault))
    assert entry["type"] == kind and entry["summary"] and entry["params"]
    assert set(entry["params"]) == set(fault.params())
    assert fault.hooks() and fault.hooks() <= set(Hook)
    assert fault.hooks() <= class_hooks(type(fault))  # a kind narrows its hooks, never invents one


@pytest.mark.parametrize("cls", KINDS)
def test_docstring_documents_every_parameter(cls: type[Fault]) -> None:
    doc = describe(cls)["doc"]
    for name in describe(cls)["params"]:
        assert re.search(rf"\b{name}\b", doc), f"{cls.kind}: parameter {name} is not documented"


def test_unknown_kind_lists_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        build_fault("explode", {})
    assert err.value.field == "type"
    assert "corrupt" in err.value.message and "throttle" in err.value.message


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidInput) as err:
        build_fault("latency", [1, 2])
    assert err.value.field == "params"


@dataclass(frozen=True)
class Misspelt(Fault):
    """Means to answer on_response, but the name is wrong: it would never run."""

    kind = "misspelt"

    async def on_responce(self, ex: Exchange) -> Outcome:
        return PROCEED


@dataclass(frozen=True)
class SyncHook(Fault):
    """An on_request that is not async: the proxy would await a plain value."""

    kind = "sync_hook"

    def on_request(self, ex: Exchange) -> Outcome:  # type: ignore[override]
        return PROCEED


@dataclass(frozen=True)
class AsyncEnd(Fault):
    """on_exchange_end runs in the proxy's finally block: it must be a plain method."""

    kind = "async_end"

    async def on_exchange_end(self, ex: Exchange) -> None:  # type: ignore[override]
        return None


def test_a_misspelt_hook_is_refused_when_registered() -> None:
    with pytest.raises(TypeError, match=r"Misspelt\.on_responce: not a hook"):
        check_kind(Misspelt)


@pytest.mark.parametrize(("cls", "message"), [(SyncHook, "on_request: must be async"),
                                              (AsyncEnd, "on_exchange_end: must be a plain")])
def test_a_hook_of_the_wrong_kind_is_refused(cls: type[Fault], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        check_kind(cls)


def test_every_registered_kind_passes_the_check() -> None:
    for cls in KINDS:
        check_kind(cls)
