"""Feature engineering shared by training (offline) and serving (online).

Features, Fraud-Detection-Handbook style:
- request-time: ``amount``, ``is_weekend``, ``is_night`` (from the transaction itself);
- ``customer_stats:*``: the customer's count and mean amount over the last 1/7/30 days,
  from history strictly *before* the transaction (what an online store can know);
- ``terminal_stats:*``: the terminal's count and fraud rate over 1/7/30 days, shifted back
  by a 7-day delay (fraud labels arrive late in real life).

Training computes them per transaction at its own time; the feature store serves the same
windows evaluated at one snapshot time. Same code, so there is no train/serve skew beyond
the snapshot's age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .simulate import DAY_S, EPOCH_S, Transactions

WINDOWS_DAYS = (1, 7, 30)
DELAY_DAYS = 7
CUSTOMER_VIEW, TERMINAL_VIEW = "customer_stats", "terminal_stats"
REQUEST_FEATURES = ("amount", "is_weekend", "is_night")
CUSTOMER_FEATURES = tuple(f"{CUSTOMER_VIEW}:{s}_{w}d" for w in WINDOWS_DAYS for s in ("count", "mean_amount"))
TERMINAL_FEATURES = tuple(f"{TERMINAL_VIEW}:{s}_{w}d" for w in WINDOWS_DAYS for s in ("count", "risk"))
STORE_FEATURES = CUSTOMER_FEATURES + TERMINAL_FEATURES
FEATURE_NAMES = REQUEST_FEATURES + STORE_FEATURES
N_FEATURES = len(FEATURE_NAMES)


def request_features(amount: float, when: datetime) -> list[float]:
    when = when.astimezone(timezone.utc)
    return [float(amount), float(when.weekday() >= 5), float(when.hour < 6)]


def _window(keys: np.ndarray, prefix: np.ndarray, q_keys_lo: np.ndarray, q_keys_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count and sum of values whose sorted key lies in [lo, hi)."""
    lo = np.searchsorted(keys, q_keys_lo, side="left")
    hi = np.searchsorted(keys, q_keys_hi, side="left")
    return (hi - lo).astype(np.float64), prefix[hi] - prefix[lo]


def _stats(entity: np.ndarray, time_s: np.ndarray, values: np.ndarray, q_entity: np.ndarray,
           q_time: np.ndarray, delay_s: int) -> np.ndarray:
    """Per query row and window: count and mean of ``values`` over [t-delay-w, t-delay).

    For amounts the mean is the mean spend; for fraud labels it is the fraud rate (risk).
    """
    span = np.int64(1) << 40  # time fits in 40 bits, so entity*span+time orders by (entity, time)
    order = np.lexsort((time_s, entity))
    keys = entity[order].astype(np.int64) * span + time_s[order]
    prefix = np.concatenate(([0.0], np.cumsum(values[order], dtype=np.float64)))
    base = q_entity.astype(np.int64) * span + q_time - delay_s
    out = []
    for w in WINDOWS_DAYS:
        count, total = _window(keys, prefix, base - w * DAY_S, base)
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        out += [count, mean]
    return np.column_stack(out)


def customer_stats(tx: Transactions, q_customer: np.ndarray, q_time: np.ndarray) -> np.ndarray:
    return _stats(tx.customer, tx.time_s, tx.amount, q_customer, q_time, 0)


def terminal_stats(tx: Transactions, q_terminal: np.ndarray, q_time: np.ndarray) -> np.ndarray:
    return _stats(tx.terminal, tx.time_s, tx.fraud.astype(np.float64), q_terminal, q_time, DELAY_DAYS * DAY_S)


def offline_features(tx: Transactions, rows: np.ndarray) -> np.ndarray:
    """Feature matrix for the given transaction rows, each at its own time."""
    t = tx.time_s[rows]
    abs_t = t + EPOCH_S
    weekday = ((abs_t // DAY_S) + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    hour = (abs_t % DAY_S) // 3600
    req = np.column_stack([tx.amount[rows], (weekday >= 5).astype(np.float64), (hour < 6).astype(np.float64)])
    return np.hstack([req, customer_stats(tx, tx.customer[rows], t), terminal_stats(tx, tx.terminal[rows], t)])


@dataclass(frozen=True, eq=False)
class OnlineSnapshot:
    """What the feature store serves: per-entity feature rows as of ``as_of_s``."""

    as_of_s: int
    customers: np.ndarray   # (n_customers, len(CUSTOMER_FEATURES))
    terminals: np.ndarray   # (n_terminals, len(TERMINAL_FEATURES))

    def customer(self, key: str) -> np.ndarray | None:
        return _lookup(self.customers, key, "C")

    def terminal(self, key: str) -> np.ndarray | None:
        return _lookup(self.terminals, key, "T")

    @property
    def event_timestamp(self) -> str:
        return datetime.fromtimestamp(EPOCH_S + self.as_of_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lookup(table: np.ndarray, key: str, prefix: str) -> np.ndarray | None:
    """The row for an entity key such as ``C00042``; None for an unknown entity."""
    digits = key[len(prefix):]
    if not key.startswith(prefix) or not digits.isdigit() or len(digits) > 9:
        return None
    index = int(digits)
    return table[index] if index < table.shape[0] else None


def online_snapshot(tx: Transactions, as_of_s: int) -> OnlineSnapshot:
    n_c, n_t = tx.config.n_customers, tx.config.n_terminals
    cust = customer_stats(tx, np.arange(n_c), np.full(n_c, as_of_s, dtype=np.int64))
    term = terminal_stats(tx, np.arange(n_t), np.full(n_t, as_of_s, dtype=np.int64))
    return OnlineSnapshot(as_of_s=as_of_s, customers=cust, terminals=term)
