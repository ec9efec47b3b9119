"""Validate a fault step's ``fault``/``params``/``match`` against the catalogues.

A step's ``fault`` names an HTTP fault kind (``faults.catalogue``) or a tcp toxic type
(``faults.toxics``); ``latency`` is both, and the params decide (``delay_ms`` → HTTP,
``latency`` → toxic). Toxics take Toxiproxy's attributes plus ``stream`` and ``toxicity``;
unlike Toxiproxy's API, unknown keys are errors here (a typo in a game day must not pass).
Errors carry fields relative to the step: ``fault``, ``params.delay_ms``, ``match.first_n``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from faults.catalogue import build_fault, build_match, check_match, known_kinds
from faults.errors import InvalidInput, InvalidInputs
from faults.toxics import Toxic, is_toxic_type, known_toxics, toxic_class
from faults.validation import suggest

_TOXIC_EXTRAS = ("stream", "toxicity")


def _errors(exc: InvalidInput) -> list[InvalidInput]:
    return list(exc.errors) if isinstance(exc, InvalidInputs) else [exc]


def _build_toxic(type_name: str, params: Mapping[str, Any]) -> Toxic:
    cls = toxic_class(type_name)
    names = {f.name for f in dataclasses.fields(cls)}
    known = (*names, *_TOXIC_EXTRAS)
    problems = [InvalidInput(suggest(k, known), f"params.{k}") for k in params if k not in known]
    stream = params.get("stream", "downstream")
    if stream not in ("upstream", "downstream"):
        problems.append(InvalidInput("must be 'upstream' or 'downstream'", "params.stream"))
    toxicity = params.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)) or not 0 <= toxicity <= 1:
        problems.append(InvalidInput("must be a number between 0 and 1", "params.toxicity"))
    attributes = {k: v for k, v in params.items() if k in names}
    try:
        toxic = cls.from_attributes(attributes)
    except InvalidInput as exc:
        problems += [InvalidInput(e.message, (e.field or "").replace("attributes", "params", 1) or "params") for e in _errors(exc)]
    if problems:
        raise InvalidInputs(problems)
    return toxic


def build_step_fault(fault: str, params: Mapping[str, Any] | None) -> Any:
    """The validated ``faults.Fault`` or ``faults.toxics.Toxic`` for a step."""
    params = params or {}
    http = fault in known_kinds()
    if not http and not is_toxic_type(fault):
        kinds = ", ".join(known_kinds())
        raise InvalidInput(f"unknown fault type {fault!r}; HTTP kinds: {kinds}; tcp toxics: {', '.join(known_toxics())}", "fault")
    if not http:
        return _build_toxic(fault, params)
    try:
        return build_fault(fault, params)
    except InvalidInput as http_error:
        if is_toxic_type(fault):
            try:
                return _build_toxic(fault, params)
            except InvalidInput:
                pass
        raise http_error from None


def layer_of(fault: str, params: Mapping[str, Any] | None) -> Literal["http", "tcp"]:
    return "tcp" if isinstance(build_step_fault(fault, params), Toxic) else "http"


def check_fault_step(raw: Mapping[str, Any]) -> list[InvalidInput]:
    """Every problem with a raw step's fault, params and match (fields relative to the step)."""
    fault, params, match = raw.get("fault"), raw.get("params"), raw.get("match")
    if not isinstance(fault, str):
        return []  # the model reports the type error
    if params is not None and not isinstance(params, Mapping):
        return []
    problems: list[InvalidInput] = []
    built: Any = None
    try:
        built = build_step_fault(fault, params)
    except InvalidInput as exc:
        problems += _errors(exc)
    if match is not None and isinstance(match, Mapping):
        if isinstance(built, Toxic):
            problems.append(InvalidInput("match applies to HTTP faults only, not tcp toxics", "match"))
        else:
            try:
                built_match = build_match(match)
                if built is not None:
                    check_match(built, built_match)
            except InvalidInput as exc:
                problems += _errors(exc)
    return problems
