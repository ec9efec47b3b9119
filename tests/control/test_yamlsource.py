"""proxy.yamlsource: positions, ${VAR} expansion, errors collected, pydantic errors located."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from faults.errors import InvalidInput
from proxy.yamlsource import errors_from_validation, format_path, load_yaml_text, load_yaml_with_positions, parse_path

TEXT = """\
name: demo
routes:
  - name: model
    port: ${PORT:-8080}
    upstream: "${UPSTREAM}"
  - name: cache
    tags: [a, b]
literal: $${NOT_A_VAR}
jsonpath: $.score
"""


def test_values_positions_and_expansion() -> None:
    doc = load_yaml_text(TEXT, "cfg.yaml", {"UPSTREAM": "http://127.0.0.1:9000"})
    assert doc.errors == []
    assert doc.data["routes"][0] == {"name": "model", "port": 8080, "upstream": "http://127.0.0.1:9000"}
    assert doc.data["literal"] == "${NOT_A_VAR}"
    assert doc.data["jsonpath"] == "$.score"
    assert doc.position("routes[0].port") == (4, 5)
    assert doc.position("routes[1]") == (6, 5)
    assert doc.position("routes[1].tags[1]") == (7, 15)
    # A path that does not exist falls back to its nearest ancestor.
    assert doc.position("routes[0].missing.deeper") == (3, 5)


def test_env_value_wins_over_default_and_unquoted_is_typed() -> None:
    doc = load_yaml_text("port: ${PORT:-8080}\nflag: ${FLAG:-false}\nq: '${PORT:-1}'\n", "x.yaml", {"PORT": "9090"})
    assert doc.data == {"port": 9090, "flag": False, "q": "9090"}


def test_unset_variable_is_an_error_naming_it_with_position() -> None:
    doc = load_yaml_text("a:\n  token: ${SECRET_TOKEN}\n  other: ${ALSO_UNSET}\n", "x.yaml", {})
    assert [e.field for e in doc.errors] == ["a.token", "a.other"]
    assert "SECRET_TOKEN" in doc.errors[0].message
    assert (doc.errors[0].line, doc.errors[0].column) == (2, 10)
    with pytest.raises(InvalidInput) as raised:
        doc.raise_errors()
    assert "x.yaml:2:10: a.token: environment variable SECRET_TOKEN is not set" in str(raised.value)


def test_duplicate_keys_are_reported() -> None:
    doc = load_yaml_text("a: 1\nb: 2\na: 3\n", "x.yaml", {})
    assert len(doc.errors) == 1 and doc.errors[0].line == 3 and "duplicate key" in doc.errors[0].message


def test_syntax_error_has_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(InvalidInput) as raised:
        load_yaml_with_positions(path, {})
    assert raised.value.source == str(path) and raised.value.line is not None
    assert "invalid YAML" in raised.value.message


def test_missing_file() -> None:
    with pytest.raises(InvalidInput, match="file not found"):
        load_yaml_with_positions(Path("/nonexistent/x.yaml"), {})


def test_dotted_paths_round_trip() -> None:
    for text in ("method[1].params.delay_ms", "a", "a[0][2].b"):
        assert format_path(parse_path(text)) == text
    with pytest.raises(ValueError):
        parse_path("a..b[")


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_ms: float = Field(ge=0)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    items: list[_Inner]


def test_validation_errors_are_located() -> None:
    doc = load_yaml_text("items:\n  - delay_ms: -1\n  - delay_ms: 1\n    typo: 2\n", "m.yaml", {})
    with pytest.raises(ValidationError) as raised:
        _Outer.model_validate(doc.data)
    errors = {e.field: e for e in errors_from_validation(raised.value, doc)}
    assert set(errors) == {"name", "items[0].delay_ms", "items[1].typo"}
    assert str(errors["items[0].delay_ms"]) == "m.yaml:2:5: items[0].delay_ms: must be >= 0, got -1"
    assert errors["items[1].typo"].message == "unknown key" and errors["items[1].typo"].line == 4
    assert errors["name"].message == "required key is missing" and errors["name"].line == 1
