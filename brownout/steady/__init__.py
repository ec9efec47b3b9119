"""Steady state: windows of records, prediction quality, streams, verdicts against the SLA, the checker."""

from brownout.steady.checker import PhaseResult, SteadyStateChecker, WindowResult
from brownout.steady.golden import GoldenProber, GoldenSet, ProbeResult, load_golden
from brownout.steady.invariants import Invariants
from brownout.steady.streams import StreamProber, StreamSample, StreamStats
from brownout.steady.verdicts import (
    BASELINE,
    METHOD,
    RECOVERY,
    Check,
    RecoveryResult,
    Verdict,
    build_checks,
    decide_outcome,
)

__all__ = [
    "BASELINE", "METHOD", "RECOVERY", "Check", "GoldenProber", "GoldenSet", "Invariants", "PhaseResult", "ProbeResult",
    "RecoveryResult", "SteadyStateChecker", "StreamProber", "StreamSample", "StreamStats", "Verdict", "WindowResult",
    "build_checks", "decide_outcome", "load_golden",
]
