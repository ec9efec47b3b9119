"""Fault catalogue: the Fault contract, the kinds, and the registry (see ``catalogue.KINDS``)."""

from faults.base import (
    PROCEED,
    AbortExchange,
    BodyEdit,
    Fault,
    Hook,
    Outcome,
    Phase,
    Proceed,
    Reset,
    Respond,
)
from faults.catalogue import KINDS, build_fault, build_match, describe, known_kinds
from faults.exchange import Exchange, ExchangeData
from faults.match import MATCH_ALL, Match

__all__ = [
    "KINDS", "MATCH_ALL", "PROCEED", "AbortExchange", "BodyEdit", "Exchange", "ExchangeData", "Fault", "Hook",
    "Match", "Outcome", "Phase", "Proceed", "Reset", "Respond", "build_fault", "build_match", "describe",
    "known_kinds",
]
