"""Seeded credit-card transaction simulator with ground-truth fraud labels.

Our own implementation of the *design* of the Fraud-Detection-Handbook simulator:
customers and terminals on a 100x100 grid, each customer uses the
terminals near them, transaction times cluster around midday, and three fraud scenarios
label the data. Everything is vectorised numpy from one ``numpy.random.Generator`` so a
seed gives the same data on every machine and the whole run takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

DAY_S = 86_400
# Day 0 of the simulation (a Monday, so weekends fall on days 5, 6, 12, 13, ...).
EPOCH = datetime(2025, 3, 3, tzinfo=timezone.utc)
EPOCH_S = int(EPOCH.timestamp())

# Fraud scenarios (label ``scenario``): 0 = legitimate.
AMOUNT_OVER_LIMIT, COMPROMISED_TERMINAL, COMPROMISED_CUSTOMER = 1, 2, 3


@dataclass(frozen=True)
class SimConfig:
    """Sizes and fraud rates. Tuned so fraud stays under 1% of transactions."""

    seed: int = 7
    n_customers: int = 500
    n_terminals: int = 1000
    n_days: int = 60
    radius: float = 5.0
    amount_limit: float = 220.0
    terminal_compromise_per_day: float = 0.12   # Poisson rate of newly compromised terminals
    terminal_compromise_days: int = 28
    customer_compromise_per_day: float = 0.25   # Poisson rate of newly compromised customers
    customer_compromise_days: int = 14
    customer_fraud_share: float = 1 / 3
    customer_fraud_multiplier: float = 5.0


@dataclass(frozen=True, eq=False)
class Transactions:
    """Column arrays, sorted by time; ``tx_id`` is the row index."""

    time_s: np.ndarray        # int64 seconds since EPOCH
    customer: np.ndarray      # int64 customer index
    terminal: np.ndarray      # int64 terminal index
    amount: np.ndarray        # float64, 2 decimals
    fraud: np.ndarray         # int8 label
    scenario: np.ndarray      # int8, 0 legit, else the fraud scenario
    config: SimConfig = field(default_factory=SimConfig)

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def fraud_rate(self) -> float:
        return float(self.fraud.mean()) if len(self) else 0.0


def customer_key(i: int) -> str:
    return f"C{i:05d}"


def terminal_key(i: int) -> str:
    return f"T{i:05d}"


def transaction_key(i: int) -> str:
    return f"TX{i:08d}"


def iso_time(time_s: int) -> str:
    return datetime.fromtimestamp(EPOCH_S + int(time_s), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate(config: SimConfig = SimConfig()) -> Transactions:
    rng = np.random.default_rng(config.seed)
    n_c, n_t, n_d = config.n_customers, config.n_terminals, config.n_days

    cust_xy = rng.uniform(0, 100, size=(n_c, 2))
    mean_amount = rng.uniform(5, 100, size=n_c)
    std_amount = mean_amount / 2
    tx_per_day = rng.uniform(0, 4, size=n_c)
    term_xy = rng.uniform(0, 100, size=(n_t, 2))

    # Terminals within the radius; a customer with none nearby uses the closest one.
    dist = np.linalg.norm(cust_xy[:, None, :] - term_xy[None, :, :], axis=2)
    near = dist < config.radius
    near[np.arange(n_c), dist.argmin(axis=1)] = True
    n_near = near.sum(axis=1)
    near_order = np.argsort(~near, axis=1, kind="stable")  # nearby terminal indices first

    counts = rng.poisson(tx_per_day[:, None], size=(n_c, n_d))
    cust = np.repeat(np.repeat(np.arange(n_c), n_d), counts.ravel())
    day = np.repeat(np.tile(np.arange(n_d), n_c), counts.ravel())
    n = cust.shape[0]

    # Daytime-clustered times: normal around noon, clipped to the day.
    tod = np.clip(rng.normal(DAY_S / 2, 20_000, size=n), 0, DAY_S - 1).astype(np.int64)
    time_s = day.astype(np.int64) * DAY_S + tod
    amount = rng.normal(mean_amount[cust], std_amount[cust])
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean_amount[cust[negative]])
    pick = (rng.random(n) * n_near[cust]).astype(np.int64)
    terminal = near_order[cust, pick]

    fraud = np.zeros(n, dtype=np.int8)
    scenario = np.zeros(n, dtype=np.int8)

    # Scenario 1: any amount over the limit is fraud.
    over = amount > config.amount_limit
    fraud[over], scenario[over] = 1, AMOUNT_OVER_LIMIT

    # Scenario 2: compromised terminals; every transaction there for N days is fraud.
    for d in range(n_d):
        for t in rng.choice(n_t, size=rng.poisson(config.terminal_compromise_per_day), replace=False):
            hit = (terminal == t) & (day >= d) & (day < d + config.terminal_compromise_days) & (fraud == 0)
            fraud[hit], scenario[hit] = 1, COMPROMISED_TERMINAL

    # Scenario 3: compromised customers; a share of their next N days' spending is inflated fraud.
    for d in range(n_d):
        for c in rng.choice(n_c, size=rng.poisson(config.customer_compromise_per_day), replace=False):
            window = np.flatnonzero((cust == c) & (day >= d) & (day < d + config.customer_compromise_days))
            chosen = window[rng.random(window.shape[0]) < config.customer_fraud_share]
            chosen = chosen[fraud[chosen] == 0]
            amount[chosen] *= config.customer_fraud_multiplier
            fraud[chosen], scenario[chosen] = 1, COMPROMISED_CUSTOMER

    order = np.argsort(time_s, kind="stable")
    return Transactions(
        time_s=time_s[order],
        customer=cust[order],
        terminal=terminal[order].astype(np.int64),
        amount=np.round(amount[order], 2),
        fraud=fraud[order],
        scenario=scenario[order],
        config=config,
    )
