"""Exit codes, mapped in one place: from run outcomes and from exceptions.

| exit | meaning |
| 0    | the hypothesis held: SLA met before, during and after |
| 1    | deviated: SLA or prediction quality violated, or no recovery in time |
| 2    | aborted by a safeguard (``abort_when``) or the baseline failed |
| 3    | invalid input: experiment or config file (``InvalidInput``) |
| 4    | could not run: target/proxy/Prometheus unreachable (``Unreachable``), refused credentials
|      | (``Unauthorized``), a PromQL query Prometheus rejects (``QueryFailed``), any internal error |
| 130  | interrupted (after cleanup) |
"""

from __future__ import annotations

import asyncio
from enum import IntEnum, StrEnum

from faults.errors import InvalidInput


class ExitCode(IntEnum):
    HELD = 0
    DEVIATED = 1
    ABORTED = 2
    INVALID_INPUT = 3
    COULD_NOT_RUN = 4
    INTERRUPTED = 130


class Outcome(StrEnum):
    """How a run ended, as the journal records it."""

    HELD = "held"
    DEVIATED = "deviated"
    ABORTED = "aborted"
    BASELINE_FAILED = "baseline_failed"
    INVALID = "invalid"
    COULD_NOT_RUN = "could_not_run"
    INTERRUPTED = "interrupted"


_BY_OUTCOME: dict[Outcome, ExitCode] = {
    Outcome.HELD: ExitCode.HELD,
    Outcome.DEVIATED: ExitCode.DEVIATED,
    Outcome.ABORTED: ExitCode.ABORTED,
    Outcome.BASELINE_FAILED: ExitCode.ABORTED,
    Outcome.INVALID: ExitCode.INVALID_INPUT,
    Outcome.COULD_NOT_RUN: ExitCode.COULD_NOT_RUN,
    Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
}


def exit_code_for_outcome(outcome: Outcome) -> ExitCode:
    return _BY_OUTCOME[outcome]


def outcome_for(exc: BaseException) -> Outcome:
    """The outcome of a run that ended with ``exc`` (Unreachable and the rest: could not run)."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return Outcome.INTERRUPTED
    if isinstance(exc, InvalidInput):
        return Outcome.INVALID
    # Something the run needs is missing or refuses it (a target, a proxy, a Prometheus and its
    # queries), or any other error: the run could not be completed.
    return Outcome.COULD_NOT_RUN


def exit_code_for(exc: BaseException) -> ExitCode:
    """Exit code for a run or command that ended with ``exc``."""
    return exit_code_for_outcome(outcome_for(exc))
