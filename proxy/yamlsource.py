"""YAML files that remember where every value came from, with ``${VAR}`` expansion.

``load_yaml_with_positions`` parses with ``yaml.compose`` (nodes keep their marks), builds
plain Python values and a map from dotted path (``method[1].params.delay_ms``) to a 1-based
``(line, column)``. Errors found while building (unset variables, duplicate keys) are
collected, not raised one at a time, so a caller can report every error of a file at once.

``${VAR}`` and ``${VAR:-default}`` expand in scalar values (never in keys); ``$${`` writes a
literal ``${``. An unquoted scalar that contained a variable is re-typed after expansion,
so ``rate: ${RATE:-50}`` is the number 50. Nothing here knows what the file describes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from faults.errors import InvalidInput, InvalidInputs
from faults.validation import dotted as join_path
from faults.validation import field_errors

PathPart = str | int
Position = tuple[int, int]

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DOTTED = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")
_MERGE_TAG = "tag:yaml.org,2002:merge"


def format_path(parts: Sequence[PathPart]) -> str:
    """``('method', 1, 'params')`` -> ``method[1].params``."""
    return join_path(parts)


def parse_path(dotted: str) -> list[PathPart]:
    """``method[1].params.delay_ms`` -> ``['method', 1, 'params', 'delay_ms']``."""
    parts: list[PathPart] = []
    pos = 0
    text = dotted.strip()
    while pos < len(text):
        if text[pos] == "." and parts:
            pos += 1
        match = _DOTTED.match(text, pos)
        if not match:
            raise ValueError(f"bad dotted path {dotted!r} at character {pos + 1}")
        key, index = match.groups()
        parts.append(int(index) if index is not None else key)
        pos = match.end()
    if not parts:
        raise ValueError("empty dotted path")
    return parts


@dataclass
class YamlDocument:
    """Plain values of one YAML file plus where each came from.

    ``errors`` holds problems found while building (unset ``${VAR}``, duplicate keys);
    ``raise_errors()`` raises them all at once.
    """

    source: str
    data: Any
    positions: dict[str, Position] = field(default_factory=dict)
    errors: list[InvalidInput] = field(default_factory=list)

    def position(self, dotted: str | Sequence[PathPart]) -> Position | None:
        """Where ``dotted`` is, or its nearest ancestor's position, or None."""
        parts = parse_path(dotted) if isinstance(dotted, str) else list(dotted)
        while True:
            found = self.positions.get(format_path(parts))
            if found is not None:
                return found
            if not parts:
                return None
            parts.pop()

    def error(self, message: str, dotted: str | Sequence[PathPart] | None) -> InvalidInput:
        """An InvalidInput located at ``dotted`` (or its nearest located ancestor)."""
        if dotted is not None and not isinstance(dotted, str):
            dotted = format_path(dotted)
        where = self.position(dotted or "") if dotted is not None else None
        line, column = where if where else (None, None)
        return InvalidInput(message, dotted or None, source=self.source, line=line, column=column)

    def locate(self, err: InvalidInput) -> InvalidInput:
        """The same error with this file's name and the position of its field filled in."""
        if err.line is not None and err.source is not None:
            return err
        located = self.error(err.message, err.field)
        if err.line is not None:
            located.line, located.column = err.line, err.column
        return located

    def raise_errors(self) -> None:
        if self.errors:
            raise InvalidInputs(list(self.errors))


def load_yaml_with_positions(path: Path, env: Mapping[str, str]) -> YamlDocument:
    """Read ``path``; raise InvalidInput for an unreadable file or a YAML syntax error.

    Unset variables and duplicate keys do not raise: they are in ``doc.errors``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read file: {exc}", source=str(path)) from None
    return load_yaml_text(text, str(path), env)


def load_yaml_text(text: str, source: str, env: Mapping[str, str]) -> YamlDocument:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise InvalidInput(f"invalid YAML: {message}", source=source, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid YAML: {exc}", source=source) from None
    builder = _Builder(source, env)
    doc = YamlDocument(source=source, data=None, positions=builder.positions, errors=builder.errors)
    if node is not None:
        builder.positions[""] = _pos(node)
        doc.data = builder.build(node, [])
    return doc


def _pos(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, source: str, env: Mapping[str, str]) -> None:
        self.source = source
        self.env = env
        self.positions: dict[str, Position] = {}
        self.errors: list[InvalidInput] = []
        self._constructor = yaml.SafeLoader("")
        self._resolver = yaml.resolver.Resolver()

    def build(self, node: yaml.Node, path: list[PathPart]) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            out = []
            for index, item in enumerate(node.value):
                self.positions.setdefault(format_path([*path, index]), _pos(item))
                out.append(self.build(item, [*path, index]))
            return out
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: list[PathPart]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = self.build(value_node, path)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            out.setdefault(k, v)
                continue
            key = self._constructor.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                self._error("keys must be plain scalars", _pos(key_node), path)
                continue
            child = [*path, str(key)]
            if key in out:
                self._error(f"duplicate key {key!r}", _pos(key_node), child)
            self.positions[format_path(child)] = _pos(key_node)
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: list[PathPart]) -> Any:
        if node.tag == "tag:yaml.org,2002:str" and "${" in node.value:
            expanded = self._expand(node.value, _pos(node), path)
            if node.style is None:  # unquoted: type it as if it had been written expanded
                tag = self._resolver.resolve(yaml.ScalarNode, expanded, (True, False))
                return self._constructor.construct_object(yaml.ScalarNode(tag, expanded))
            return expanded
        return self._constructor.construct_object(node)

    def _expand(self, value: str, where: Position, path: list[PathPart]) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            found = self.env.get(name)
            if found is not None and (found != "" or default is None):
                return found
            if default is not None:
                return default
            self._error(f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)", where, path)
            return ""

        return _VAR.sub(replace, value)

    def _error(self, message: str, where: Position, path: list[PathPart]) -> None:
        self.errors.append(InvalidInput(message, format_path(path) or None, source=self.source, line=where[0], column=where[1]))


# -- pydantic errors -> located InvalidInputs ------------------------------------------

def errors_from_validation(exc: ValidationError, doc: YamlDocument, data: Any = None, prefix: Sequence[PathPart] = (),
                           known: Collection[str] = ()) -> list[InvalidInput]:
    """Turn a pydantic ValidationError into InvalidInputs carrying source/line/column/field.

    The wording is ``faults.validation``'s (``unknown key (did you mean ...)`` from ``known``).
    ``data`` is what was validated (default ``doc.data``). pydantic puts union tags and
    validator names into ``loc``; they are dropped by walking ``loc`` through ``data``: a
    part that is not in the data is kept only when it names a missing key or the key a
    validator named in its message.
    """
    data = doc.data if data is None else data
    out: list[InvalidInput] = []
    for err in field_errors(exc, known):
        parts = _data_path(list(err.loc), data, err.type == "missing")
        if err.named is not None:
            parts.append(err.named)
        out.append(doc.error(err.message, [*prefix, *parts]))
    return out


def _data_path(loc: list[Any], data: Any, missing: bool) -> list[PathPart]:
    parts: list[PathPart] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            parts.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            parts.append(part)
            node = node[part]
        elif missing and i == len(loc) - 1 and isinstance(part, str):
            parts.append(part)
    return parts
