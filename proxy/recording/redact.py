"""Redaction of recorded exchanges: secrets are replaced before anything is written.

What is redacted:

* **Headers** ``Authorization``, ``Cookie``, ``Set-Cookie``, ``Proxy-Authorization`` and
  ``X-Api-Key`` always, plus any configured under ``headers`` (names match case-insensitively):
  the header stays on the line, its value becomes ``[REDACTED]``. Keeping the name shows a
  reader (and a replay) that the request carried one; the value never reaches the disk.
* **JSON paths** (``json_paths``, the project's JSONPath subset: ``$.customer.email``,
  ``$.items[0].card``, ``$.items[*].card``) in request and response bodies and in SSE event
  data: each selected value, whatever its type, becomes ``"[REDACTED]"``.
* **Patterns** (``patterns``, Python regular expressions): every match in the path and query,
  in every header value, in every string of a JSON body or event (and in the text of every
  number, so a card number sent as a JSON number is caught too: a number with a match becomes
  the redacted string), and in bodies that are not JSON (matched on the bytes read as UTF-8)
  is replaced with ``[REDACTED]``. JSON object keys are not rewritten.

A ``Redaction`` is parsed once (bad input raises ``InvalidInput`` naming the entry, e.g.
``redact.patterns[1]: bad regular expression '\\d{16': ...``) and is cheap to call per
exchange; it pickles, so a writer process can receive it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, PrivateAttr, ValidationError

from faults.errors import InvalidInput, InvalidInputs
from faults.jsonpath import JsonPath, compile_path

MARKER = "[REDACTED]"
ALWAYS_REDACTED = ("authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header_name(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"not a header name: {value!r}")
    return value


def _json_path(value: str) -> str:
    path = compile_path(value)  # ValueError names the bad character
    if not path.steps:
        raise ValueError(f"{value!r} selects the whole body; name a field such as $.customer.email")
    return value


def _pattern(value: str) -> str:
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    if compiled.match(""):
        raise ValueError(f"regular expression {value!r} matches the empty string")
    return value


class Redaction(BaseModel):
    """``{headers: [...], json_paths: [...], patterns: [...]}``; all optional, defaults always apply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    headers: tuple[Annotated[str, AfterValidator(_header_name)], ...] = ()
    json_paths: tuple[Annotated[str, AfterValidator(_json_path)], ...] = ()
    patterns: tuple[Annotated[str, AfterValidator(_pattern)], ...] = ()

    _redactor: Redactor = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._redactor = Redactor(
            frozenset(ALWAYS_REDACTED) | {h.lower() for h in self.headers},
            tuple(compile_path(p) for p in self.json_paths),
            _combine(self.patterns),
        )

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None, field: str = "redact") -> Redaction:
        """Validate a plain mapping; every error is an ``InvalidInput`` naming ``field.key[i]``."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidInput("must be an object with headers, json_paths and/or patterns", field)
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            errors = []
            for err in exc.errors():
                where = field + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
                message = str(err["msg"]).removeprefix("Value error, ")
                errors.append(InvalidInput(message, where))
            raise (errors[0] if len(errors) == 1 else InvalidInputs(errors)) from None

    @property
    def redactor(self) -> Redactor:
        """The compiled form, for callers that redact many values per exchange (no model lookups)."""
        return self._redactor

    @property
    def touches_bodies(self) -> bool:
        return self._redactor.touches_bodies

    def header_pairs(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return self._redactor.header_pairs(pairs)

    def text(self, value: str) -> str:
        return self._redactor.text(value)

    def data(self, raw: bytes) -> bytes:
        return self._redactor.data(raw)

    def document(self, doc: Any) -> Any:
        return self._redactor.document(doc)


def _combine(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """One alternation of all patterns (one pass per value), or each apart when a backreference
    or a group name used twice would change meaning in the alternation."""
    if len(patterns) > 1 and not any(_BACKREF.search(p) for p in patterns):
        try:
            return (re.compile("|".join(f"(?:{p})" for p in patterns)),)
        except re.error:
            pass
    return tuple(re.compile(p) for p in patterns)


_BACKREF = re.compile(r"\\[1-9]|\(\?P=")


class Redactor:
    """What a ``Redaction`` compiles to: plain slots, so per-value calls stay cheap."""

    __slots__ = ("names", "paths", "regexes", "touches_bodies")

    def __init__(self, names: frozenset[str], paths: tuple[JsonPath, ...], regexes: tuple[re.Pattern[str], ...]) -> None:
        self.names = names
        self.paths = paths
        self.regexes = regexes
        self.touches_bodies = bool(paths or regexes)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Redactor, (self.names, self.paths, self.regexes))

    def __eq__(self, other: object) -> bool:  # models compare their private state too
        return isinstance(other, Redactor) and (self.names, self.paths, self.regexes) == (other.names, other.paths, other.regexes)

    def __hash__(self) -> int:
        return hash((self.names, self.paths, self.regexes))

    def header_pairs(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        names, text = self.names, self.text
        return [(name, MARKER if name.lower() in names else text(value)) for name, value in pairs]

    def text(self, value: str) -> str:
        for regex in self.regexes:
            value = regex.sub(MARKER, value)
        return value

    def data(self, raw: bytes) -> bytes:
        """Patterns over bytes that are not JSON; bytes that are not UTF-8 survive unchanged."""
        if not self.regexes:
            return raw
        text = raw.decode("utf-8", "surrogateescape")
        redacted = self.text(text)
        return raw if redacted == text else redacted.encode("utf-8", "surrogateescape")

    def document(self, doc: Any) -> Any:
        """Redact a parsed JSON document in place (containers) and return it (scalars are new)."""
        for path in self.paths:
            path.set(doc, _marker)
        if self.regexes:
            doc = _walk(doc, self.regexes[0].sub if len(self.regexes) == 1 else self._sub)
        return doc

    def _sub(self, marker: str, value: str) -> str:
        for regex in self.regexes:
            value = regex.sub(marker, value)
        return value


def _walk(node: Any, sub: Callable[[str, str], str]) -> Any:
    kind = type(node)
    if kind is str:
        return sub(MARKER, node)
    if kind is dict:
        for key, value in node.items():
            if value is not None and value is not True and value is not False:
                node[key] = _walk(value, sub)
    elif kind is list:
        for i, value in enumerate(node):
            if value is not None and value is not True and value is not False:
                node[i] = _walk(value, sub)
    elif kind is int or kind is float:
        text = repr(node)
        redacted = sub(MARKER, text)
        if redacted != text:
            return redacted
    return node


def _marker(_: Any) -> str:
    return MARKER


NO_EXTRA = Redaction()
