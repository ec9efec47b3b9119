"""protocols: detection from path then body; default and user paths; lenient parsing."""

from __future__ import annotations

import math

import pytest

from faults.ml.jsonbody import loads_lenient, pick
from faults.ml.protocols import Protocol, Role, check_paths, detect, resolve
from tests.faults.ml.shapes import CHAT, EMBED, FEAST_COLUMNS, MLFLOW, OIP, TF


@pytest.mark.parametrize(("path", "expected"), [
    ("/v2/models/fraud/infer", Protocol.OIP),
    ("/v2/models/fraud/versions/3/infer", Protocol.OIP),
    ("/v1/models/fraud:predict", Protocol.TF_SERVING),
    ("/v1/models/fraud/versions/2:classify", Protocol.TF_SERVING),
    ("/invocations", Protocol.MLFLOW),
    ("/v1/chat/completions", Protocol.OPENAI_CHAT),
    ("/openai/v1/completions", Protocol.OPENAI_COMPLETIONS),
    ("/v1/embeddings", Protocol.OPENAI_EMBEDDINGS),
    ("/get-online-features", Protocol.FEAST),
    ("/score", Protocol.GENERIC),
])
def test_detect_by_path(path: str, expected: Protocol) -> None:
    assert detect(path) == expected


@pytest.mark.parametrize(("doc", "expected"), [
    (OIP, Protocol.OIP), (TF, Protocol.TF_SERVING), (MLFLOW, Protocol.TF_SERVING), (CHAT, Protocol.OPENAI_CHAT),
    ({"object": "text_completion", "choices": []}, Protocol.OPENAI_COMPLETIONS),
    (EMBED, Protocol.OPENAI_EMBEDDINGS), (FEAST_COLUMNS, Protocol.FEAST), ({"score": 1}, Protocol.GENERIC),
    ([1, 2], Protocol.GENERIC),
])
def test_detect_by_body_when_the_path_says_nothing(doc: object, expected: Protocol) -> None:
    assert detect("/predict", doc) == expected


def test_path_wins_over_body() -> None:
    assert detect("/invocations", TF) == Protocol.MLFLOW


def test_user_paths_override_the_defaults() -> None:
    assert [p.text for p in resolve((), Protocol.OIP, Role.SCORES)] == ["$.outputs[*].data"]
    assert [p.text for p in resolve(("$.result.p",), Protocol.OIP, Role.SCORES)] == ["$.result.p"]


def test_bad_user_path_names_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"^paths: .*character"):
        check_paths(("$.a..b",), "paths")
    with pytest.raises(ValueError, match=r"^paths: .*below"):
        check_paths(("$",), "paths")


def test_lenient_parse_accepts_bare_nan_and_infinity() -> None:
    doc = loads_lenient(b'{"predictions": [NaN, Infinity, -Infinity, 1]}')
    values = doc["predictions"]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf and values[3] == 1


def test_pick_is_seeded_and_takes_at_least_one() -> None:
    import random
    items = list(range(10))
    assert pick(random.Random(3), items, 0.3) == pick(random.Random(3), items, 0.3)
    assert len(pick(random.Random(3), items, 0.3)) == 3
    assert len(pick(random.Random(3), items, 0.01)) == 1
    assert pick(random.Random(3), items, 1.0) == items
    assert pick(random.Random(3), [], 0.5) == []
