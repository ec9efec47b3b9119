"""match: which requests a fault targets, and the counting part of the decision."""

from __future__ import annotations

import random

import pytest
from multidict import CIMultiDict

from faults.catalogue import build_match
from faults.errors import InvalidInputs
from faults.match import MATCH_ALL, Match

HEADERS = CIMultiDict({"Content-Type": "application/json", "X-Tenant": "acme-prod"})


def test_match_all_matches_everything() -> None:
    assert MATCH_ALL.matches_request("GET", "/", CIMultiDict())
    assert build_match(None) is MATCH_ALL and build_match({}) is MATCH_ALL


def test_methods_path_and_headers() -> None:
    m = build_match({"methods": ["post"], "path": "/v1/models/*:predict", "headers": {"x-tenant": "acme-*"}})
    assert m.matches_request("POST", "/v1/models/fraud/versions/2:predict", HEADERS)  # * crosses /
    assert not m.matches_request("GET", "/v1/models/fraud:predict", HEADERS)
    assert not m.matches_request("POST", "/v1/models/fraud:explain", HEADERS)
    assert not m.matches_request("POST", "/v1/models/fraud:predict", CIMultiDict({"X-Tenant": "other"}))
    assert not m.matches_request("POST", "/v1/models/fraud:predict", CIMultiDict())


def test_path_glob_is_anchored() -> None:
    m = Match(path="/v1/*")
    assert m.matches_request("GET", "/v1/x", CIMultiDict())
    assert not m.matches_request("GET", "/api/v1/x", CIMultiDict())


def test_body_predicates() -> None:
    m = build_match({"body": {"path": "$.model", "equals": "gpt-4o"}})
    assert m.needs_body
    assert m.matches_request("POST", "/", CIMultiDict(), {"model": "gpt-4o"})
    assert not m.matches_request("POST", "/", CIMultiDict(), {"model": "small"})
    assert not m.matches_request("POST", "/", CIMultiDict())  # body not read: no match
    c = build_match({"body": {"path": "$.inputs[*].name", "contains": "age"}})
    assert c.matches_request("POST", "/", CIMultiDict(), {"inputs": [{"name": "x"}, {"name": "user_age"}]})
    assert not c.matches_request("POST", "/", CIMultiDict(), {"inputs": [{"name": 5}]})


def decisions(m: Match, n: int, seed: int = 1) -> list[int]:
    """Which of n matching requests (1-based) get the fault, counting like the proxy does."""
    rng = random.Random(seed)
    injected = 0
    hits = []
    for seen in range(1, n + 1):
        if m.decide(seen, injected, rng):
            injected += 1
            hits.append(seen)
    return hits


def test_first_n() -> None:
    assert decisions(Match(first_n=3), 10) == [1, 2, 3]


def test_every_nth() -> None:
    assert decisions(Match(every_nth=3), 10) == [3, 6, 9]


def test_max_injections() -> None:
    assert decisions(Match(max_injections=2), 10) == [1, 2]
    assert decisions(Match(every_nth=2, max_injections=2), 10) == [2, 4]


def test_probability_with_seeded_rng() -> None:
    hits = decisions(Match(probability=0.3), 1000, seed=1234)
    assert 250 <= len(hits) <= 350
    assert hits == decisions(Match(probability=0.3), 1000, seed=1234)  # reproducible
    assert decisions(Match(probability=0.0), 100) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"probability": 1.5}, "match.probability"),
        ({"first_n": 0}, "match.first_n"),
        ({"every_nth": 0}, "match.every_nth"),
        ({"max_injections": -1}, "match.max_injections"),
        ({"body": {"path": "$.a"}}, "match.body.equals"),
        ({"body": {"path": "nope", "equals": 1}}, "match.body.path"),
        ({"paths": "/x"}, "match.paths"),
    ],
)
def test_bad_match_names_the_field(data: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_match(data)
    assert [e.field for e in err.value.errors] == [field]


def test_as_dict_round_trips() -> None:
    data = {"methods": ["POST"], "path": "/p", "headers": {"x-a": "b"}, "probability": 0.5, "first_n": 3,
            "body": {"path": "$.m", "equals": "x"}}
    m = build_match(data)
    assert m.as_dict() == data
    assert build_match(m.as_dict()) == m
