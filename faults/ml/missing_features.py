"""missing_features: features go missing — nulls, Feast NOT_FOUND/NULL_VALUE, dropped keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from faults.base import BodyEdit, Hook, require
from faults.exchange import Exchange
from faults.json_ops import dumps
from faults.jsonpath import compile_path
from faults.ml import records
from faults.ml.feast import NOT_FOUND, NULL_VALUE, FeastTable
from faults.ml.jsonbody import (
    JsonResponseFault,
    edit_at,
    is_json_request,
    loads_lenient,
    pick,
    rewrite_whole,
)
from faults.ml.protocols import Protocol, check_paths


@dataclass(frozen=True)
class MissingFeaturesFault(JsonResponseFault):
    """Make features go missing: null values, Feast ``NOT_FOUND``/``NULL_VALUE`` statuses, or dropped keys.

    Why realistic: missing inputs are the classic silent training/serving skew — the model
    imputes and still answers 200 (Rules of ML #10 "watch for silent failures"; ML Test
    Score "data invariants hold for inputs").
    ``mode``: ``not_found`` (default: value null, Feast status ``NOT_FOUND``), ``null``
    (value null, status ``NULL_VALUE``), ``drop`` (the feature removed: Feast name + column,
    or the key of each request row). ``features``: names to hit (``view:name`` or ``name``);
    default every feature except Feast join keys. ``fraction``: share of the selected values
    hit (of the features, in ``drop`` mode), chosen with the seeded rng, at least one.
    ``direction``: ``response`` (default: a Feast get-online-features response) or
    ``request`` (the model request: ``instances``/``dataframe_records`` objects,
    ``dataframe_split`` columns, ``inputs`` columns or OIP input tensors, by name).
    ``paths``: JSON paths for any other shape; the values there are nulled (removed in
    ``drop`` mode). Unchanged bodies pass byte for byte.
    """

    kind = "missing_features"

    mode: Literal["not_found", "null", "drop"] = "not_found"
    features: tuple[str, ...] = ()
    fraction: float = 1.0
    direction: Literal["response", "request"] = "response"
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(0.0 < self.fraction <= 1.0, "fraction", f"must be in (0, 1], got {self.fraction}")
        check_paths(self.paths, "paths")

    # -- response side (Feast, or user paths)

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        if self.direction != "response":
            return 0
        if self.paths:
            return self._at_paths(doc, ex)
        table = FeastTable.of(doc)
        if table is None:
            return 0
        if self.mode == "drop":
            chosen = pick(ex.rng, table.feature_indexes(self.features), self.fraction)
            for feature in sorted(chosen, reverse=True):
                table.drop_feature(feature)
            return len(chosen)
        status = NOT_FOUND if self.mode == "not_found" else NULL_VALUE
        changed = 0
        for cell in pick(ex.rng, table.cells(self.features), self.fraction):
            changed += table.set(cell, "values", None) | table.set(cell, "statuses", status)
        return changed

    def _at_paths(self, doc: Any, ex: Exchange) -> int:
        paths = tuple(compile_path(p) for p in self.paths)
        if self.mode == "drop":
            return sum(p.remove(doc) for p in paths)
        return edit_at(paths, doc, lambda _old: None, ex.rng, self.fraction)

    def hooks(self) -> frozenset[Hook]:
        return frozenset({Hook.WRAP_RESPONSE_BODY if self.direction == "response" else Hook.WRAP_REQUEST_BODY})

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return super().wrap_response_body(ex, body) if self.direction == "response" else body

    # -- request side (the model's input rows)

    def request_edit(self, ex: Exchange) -> BodyEdit:
        return BodyEdit.REWRITE if self.direction == "request" and is_json_request(ex) else BodyEdit.NONE

    def wrap_request_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        if self.direction != "request" or not is_json_request(ex):
            return body
        return rewrite_whole(body, lambda raw: self.transform_request(raw, ex), self.max_body_bytes)

    def transform_request(self, raw: bytes, ex: Exchange) -> bytes:
        doc = loads_lenient(raw)
        if not isinstance(doc, dict):
            return raw
        if self.paths:
            changed = self._at_paths(doc, ex)
        elif self.mode == "drop":
            names = sorted({s.name for s in records.slots(doc, self.features)})
            changed = records.drop_features(doc, set(pick(ex.rng, names, self.fraction)))
        else:
            changed = sum(records.null_out(s) for s in pick(ex.rng, records.slots(doc, self.features), self.fraction))
        ex.report(values_changed=changed)
        return dumps(doc) if changed else raw
