"""``steady_state.predictions.replay``: every replayed answer against the answer recorded for its request."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from brownout.experiment.types import Fraction, JsonPathText, NonNegative


class ReplayAgreement(BaseModel):
    """Compare each answer to a request of ``load.payloads`` (a recording) with the answer recorded
    for it: same status, ``score`` within ``tolerance``, every other field equal but those in
    ``ignore``; at least ``min_agreement`` of a window's answers must agree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: JsonPathText | None = None  # default: steady_state.predictions.score
    tolerance: NonNegative | None = None  # default: steady_state.predictions.tolerance
    ignore: tuple[JsonPathText, ...] = ()
    min_agreement: Fraction
