"""The /predict request and response bodies, parsed at the edge into frozen types."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from faults.errors import InvalidInput

MAX_ID_LEN = 64
MAX_AMOUNT = 1_000_000.0


@dataclass(frozen=True)
class Transaction:
    transaction_id: str
    customer_id: str
    terminal_id: str
    amount: float
    timestamp: datetime

    def body(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "customer_id": self.customer_id,
            "terminal_id": self.terminal_id,
            "amount": self.amount,
            "timestamp": self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise InvalidInput("is required", name)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LEN:
        raise InvalidInput(f"must be a non-empty string of at most {MAX_ID_LEN} characters", name)
    return value


def _amount(body: dict[str, Any]) -> float:
    value = body.get("amount")
    if value is None:
        raise InvalidInput("is required", "amount")
    # bool is an int subclass in Python; a JSON true is not an amount.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput("must be a number", "amount")
    amount = float(value)
    if not math.isfinite(amount) or amount < 0 or amount > MAX_AMOUNT:
        raise InvalidInput(f"must be a finite number between 0 and {MAX_AMOUNT:g}", "amount")
    return amount


def _timestamp(body: dict[str, Any]) -> datetime:
    raw = _text(body, "timestamp")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("must be an ISO 8601 date-time", "timestamp") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def parse_transaction(body: Any) -> Transaction:
    """Validate a decoded JSON body; raises ``InvalidInput`` naming the bad field."""
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return Transaction(
        transaction_id=_text(body, "transaction_id"),
        customer_id=_text(body, "customer_id"),
        terminal_id=_text(body, "terminal_id"),
        amount=_amount(body),
        timestamp=_timestamp(body),
    )
