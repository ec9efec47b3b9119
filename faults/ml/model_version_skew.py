"""model_version_skew: responses claim (or come from) another model version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from faults.base import require
from faults.exchange import Exchange
from faults.ml.jsonbody import JsonResponseFault
from faults.ml.protocols import Protocol, Role, check_paths, resolve
from faults.ml.tensors import slots


@dataclass(frozen=True)
class ModelVersionSkewFault(JsonResponseFault):
    """Skew the model version: rewrite ``model_version`` (OIP), ``model`` and ``system_fingerprint`` (OpenAI).

    Why realistic: canary and rollback skew route part of the traffic to an older model that
    expects features no longer served (TFDV skew detection); OpenAI's ``system_fingerprint``
    exists to flag backend changes. Combine with ``match.probability`` to
    skew x% of requests.
    ``version``: the version (or OpenAI model name) written. ``fingerprint``: the OpenAI
    ``system_fingerprint`` written where one is present (default ``fp_`` + version).
    ``paths``: JSON paths of version fields for other shapes (defaults: OIP and generic
    ``model_version``, OpenAI ``model``). OIP responses without ``model_version`` get one.
    Streamed (SSE) responses are rewritten event by event, so every ``stream: true`` chunk
    names the skewed model too. Unchanged bodies and events pass byte for byte.
    """

    kind = "model_version_skew"
    rewrites_events: ClassVar[bool] = True

    version: str
    fingerprint: str | None = None
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(bool(self.version), "version", "must not be empty")
        check_paths(self.paths, "paths")

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        changed = 0
        for path in resolve(self.paths, protocol, Role.VERSION):
            for parent, key in slots(path, doc):
                changed += parent[key] != self.version
                parent[key] = self.version
        if protocol == Protocol.OIP and not self.paths and isinstance(doc, dict) and "model_version" not in doc:
            doc["model_version"] = self.version
            changed += 1
        if isinstance(doc, dict) and isinstance(doc.get("system_fingerprint"), str) and not self.paths:
            fingerprint = self.fingerprint or f"fp_{self.version}"
            changed += doc["system_fingerprint"] != fingerprint
            doc["system_fingerprint"] = fingerprint
        return changed
