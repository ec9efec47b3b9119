"""nan_tensor: NaN / Infinity (bare tokens), null or "NaN" strings inside output tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from faults.base import require
from faults.exchange import Exchange
from faults.ml.jsonbody import JsonResponseFault, pick
from faults.ml.protocols import Protocol, Role, check_paths, resolve
from faults.ml.tensors import numeric_leaves, targets

_VALUES: dict[str, Any] = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "null": None, "string": "NaN"}


@dataclass(frozen=True)
class NanTensorFault(JsonResponseFault):
    """Put non-finite values into model outputs: bare ``NaN``/``Infinity`` tokens, ``null`` or ``"NaN"``.

    Why realistic: TF Serving documents bare ``NaN``/``Infinity`` tokens in its REST JSON,
    Python servers emit them, and strict parsers then fail while lenient ones propagate the
    NaN ("Out of range float values are not JSON compliant": vLLM fork #435, Prefect #6439;
    ML Test Score "models are numerically stable").
    ``value``: ``nan`` (default), ``infinity``, ``-infinity``, ``null`` or ``string`` (the
    string ``"NaN"``). ``fraction``: share of the numbers hit, chosen with the seeded rng, at
    least one. ``outputs``: OIP output tensor names to hit (default all). ``paths``: JSON
    paths of the outputs for other shapes (defaults: OIP ``outputs[*].data``, TF Serving /
    MLflow ``predictions``, OpenAI embeddings ``data[*].embedding``, Feast
    ``results[*].values``). Unchanged bodies pass byte for byte.
    """

    kind = "nan_tensor"

    value: Literal["nan", "infinity", "-infinity", "null", "string"] = "nan"
    fraction: float = 0.1
    outputs: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def validate(self) -> None:
        require(0.0 < self.fraction <= 1.0, "fraction", f"must be in (0, 1], got {self.fraction}")
        check_paths(self.paths, "paths")

    def rewrite(self, doc: Any, protocol: Protocol, ex: Exchange) -> int:
        oip = protocol == Protocol.OIP and not self.paths
        places = targets(doc, resolve(self.paths, protocol, Role.SCORES), oip, self.outputs)
        leaves = [leaf for parent, key in places for leaf in numeric_leaves(parent, key)]
        chosen = pick(ex.rng, leaves, self.fraction)
        for parent, key in chosen:
            parent[key] = _VALUES[self.value]
        return len(chosen)
