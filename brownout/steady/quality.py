"""Prediction quality: per-response validity, score drift (PSI), precision/recall, Brier.

PSI = Σ_b (a_b − e_b)·ln(a_b / e_b) over bins whose edges are the baseline's deciles, with
empty bins smoothed to ``eps`` so a bin that empties out counts instead of dividing by zero.
Conventional reading: < 0.1 no change, 0.1–0.25 moderate, > 0.25 significant.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from brownout.steady.invariants import ResponseCheck, check_response

__all__ = ["ResponseCheck", "check_response"]  # re-exported: per-response checks live in invariants

PSI_BINS = 10
PSI_EPS = 1e-4
# PSI needs samples: with fewer than this on either side it is not computed (too noisy to
# judge; ~10 per bin). Small windows are pooled with the phase's previous ones, up to
# DRIFT_POOL of the most recent scores.
MIN_DRIFT_SAMPLES = 100
DRIFT_POOL = 1000
# Phase-wide score samples (baseline reference, phase PSI) are uniform reservoirs of this
# size, so a long soak keeps bounded memory.
RESERVOIR_SIZE = 20_000


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (q in [0, 1])."""
    if not sorted_values:
        raise ValueError("quantile of nothing")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class PsiReference:
    """Bins and expected proportions from a baseline sample, built once, reused per window."""

    edges: tuple[float, ...]  # inner edges; len(edges) + 1 bins
    expected: tuple[float, ...]
    size: int

    @classmethod
    def from_baseline(cls, baseline: Sequence[float], bins: int = PSI_BINS, eps: float = PSI_EPS) -> PsiReference:
        values = sorted(v for v in baseline if math.isfinite(v))
        if not values:
            raise ValueError("no finite baseline scores")
        edges = tuple(sorted({quantile(values, i / bins) for i in range(1, bins)}))
        return cls(edges, _proportions(values, edges, eps), len(values))

    def psi(self, actual: Sequence[float], eps: float = PSI_EPS) -> float:
        observed = _proportions([v for v in actual if math.isfinite(v)], self.edges, eps)
        return sum((a - e) * math.log(a / e) for a, e in zip(observed, self.expected))


def _proportions(values: Sequence[float], edges: Sequence[float], eps: float) -> tuple[float, ...]:
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect.bisect_right(edges, v)] += 1
    total = len(values)
    raw = [c / total if total else 0.0 for c in counts]
    smoothed = [max(p, eps) for p in raw]
    norm = sum(smoothed)
    return tuple(p / norm for p in smoothed)


def psi(baseline: Sequence[float], actual: Sequence[float], bins: int = PSI_BINS, eps: float = PSI_EPS) -> float:
    """Population stability index of ``actual`` against ``baseline`` (bins from the baseline)."""
    return PsiReference.from_baseline(baseline, bins, eps).psi(actual, eps)


def precision_recall(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> tuple[float | None, float | None]:
    """Precision and recall of ``score >= threshold`` as positive; None where undefined."""
    tp = sum(1 for s, y in zip(scores, labels) if s >= threshold and y == 1)
    fp = sum(1 for s, y in zip(scores, labels) if s >= threshold and y == 0)
    fn = sum(1 for s, y in zip(scores, labels) if s < threshold and y == 1)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def brier(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Mean squared error of probabilities against 0/1 labels (lower is better)."""
    pairs = list(zip(scores, labels))
    return sum((s - y) ** 2 for s, y in pairs) / len(pairs) if pairs else None


class Reservoir:
    """A uniform sample of at most ``size`` values from a stream (seeded: runs repeat)."""

    def __init__(self, size: int = RESERVOIR_SIZE, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def extend(self, values: Sequence[float]) -> None:
        for v in values:
            self.seen += 1
            if len(self.values) < self.size:
                self.values.append(v)
            else:
                j = self._rng.randrange(self.seen)
                if j < self.size:
                    self.values[j] = v

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class QualityStats:
    """Prediction quality of one window (or phase); None where there was nothing to measure."""

    responses: int = 0          # 2xx responses whose body was checked
    invalid: int = 0
    problems: tuple[tuple[str, int], ...] = ()  # (problem, count), most common first
    scores: int = 0
    probes: int = 0
    agreement: float | None = None
    psi: float | None = None
    precision: float | None = None
    recall: float | None = None
    brier: float | None = None
    violations: tuple[tuple[str, int], ...] = ()  # (invariant category, responses breaking it)
    echo_checked: int = 0       # golden probes whose id echo was checked
    echo_mismatches: int = 0
    replay_compared: int = 0    # answers compared with the recorded ones (replay agreement)
    replay_agreed: int = 0
    replay_disagreements: tuple[tuple[str, int], ...] = ()  # (kind, answers), most common first
    replay_examples: tuple[str, ...] = ()  # the first disagreements: "line 12: score: $.score = 0.3, recorded ..."

    @property
    def valid_rate(self) -> float | None:
        return (self.responses - self.invalid) / self.responses if self.responses else None

    def violation_rate(self, category: str) -> float | None:
        """Share of checked responses breaking ``category`` (None with no responses)."""
        return dict(self.violations).get(category, 0) / self.responses if self.responses else None

    @property
    def echo_mismatch_rate(self) -> float | None:
        return self.echo_mismatches / self.echo_checked if self.echo_checked else None

    @property
    def replay_agreement(self) -> float | None:
        return self.replay_agreed / self.replay_compared if self.replay_compared else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "responses": self.responses, "invalid": self.invalid, "valid_rate": self.valid_rate,
            "problems": dict(self.problems), "scores": self.scores, "probes": self.probes,
            "agreement": self.agreement, "psi": self.psi, "precision": self.precision,
            "recall": self.recall, "brier": self.brier, "violations": dict(self.violations),
            "echo_checked": self.echo_checked, "echo_mismatches": self.echo_mismatches,
            "replay": {"compared": self.replay_compared, "agreed": self.replay_agreed,
                       "agreement": self.replay_agreement, "disagreements": dict(self.replay_disagreements),
                       "examples": list(self.replay_examples)},
        }
