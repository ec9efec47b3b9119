"""jsonpath: the one path syntax: find, set, remove, wildcards, errors."""

from __future__ import annotations

import pytest

from faults.jsonpath import WILDCARD, compile_path


def doc() -> dict:
    return {
        "a": {"b": [{"c": 1}, {"c": 2}, {"d": 3}]},
        "key.with.dot": 7,
        "items": [{"score": 0.5}, {"score": 0.25}],
        "dash-key": "x",
    }


def test_compile_steps() -> None:
    assert compile_path("$.a.b[0].c").steps == ("a", "b", 0, "c")
    assert compile_path("$['key.with.dot']").steps == ("key.with.dot",)
    assert compile_path('$["q"][-1]').steps == ("q", -1)
    assert compile_path("$.items[*].score").steps == ("items", WILDCARD, "score")
    assert compile_path("$.a.*").steps == ("a", WILDCARD)
    assert compile_path("$").steps == ()


def test_find_and_first() -> None:
    d = doc()
    assert compile_path("$.a.b[1].c").find(d) == [2]
    assert compile_path("$.a.b[*].c").find(d) == [1, 2]
    assert compile_path("$['key.with.dot']").find(d) == [7]
    assert compile_path("$.dash-key").find(d) == ["x"]
    assert compile_path("$.a.b[-1].d").first(d) == 3
    assert compile_path("$.nope.x").find(d) == []
    assert compile_path("$.a.b[9]").first(d, "dflt") == "dflt"
    assert compile_path("$.a.b.c").find(d) == []  # a key step on a list selects nothing
    assert compile_path("$").find(d) == []


def test_wildcard_over_object_values() -> None:
    assert compile_path("$.*").find({"x": 1, "y": 2}) == [1, 2]
    assert compile_path("$.*").find(5) == []


def test_set_counts_and_computes_from_old() -> None:
    d = doc()
    assert compile_path("$.items[*].score").set(d, lambda old: old * 2) == 2
    assert d["items"] == [{"score": 1.0}, {"score": 0.5}]
    assert compile_path("$.missing").set(d, lambda old: 1) == 0
    assert "missing" not in d


def test_remove_keys_and_list_items() -> None:
    d = doc()
    assert compile_path("$.a.b[*].c").remove(d) == 2
    assert d["a"]["b"] == [{}, {}, {"d": 3}]
    assert compile_path("$.items[*]").remove(d) == 2
    assert d["items"] == []
    assert compile_path("$['key.with.dot']").remove(d) == 1
    assert "key.with.dot" not in d


def test_remove_list_items_keeps_indexes_valid() -> None:
    d = {"xs": [0, 1, 2, 3]}
    assert compile_path("$.xs[*]").remove(d) == 4
    assert d == {"xs": []}


@pytest.mark.parametrize("bad", ["a.b", "", "$.a..b", "$.a[", "$.a[x]", "$ .a", "$.1abc"])
def test_bad_paths_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="JSON path"):
        compile_path(bad)


def test_bad_path_error_names_the_position() -> None:
    with pytest.raises(ValueError, match="at character 2"):
        compile_path("$.[0]")
