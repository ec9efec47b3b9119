from __future__ import annotations

import numpy as np

from brownout.demo.features import FEATURE_NAMES, offline_features, online_snapshot
from brownout.demo.simulate import (
    AMOUNT_OVER_LIMIT,
    COMPROMISED_CUSTOMER,
    COMPROMISED_TERMINAL,
    DAY_S,
    SimConfig,
    simulate,
)


def test_same_seed_same_transactions_other_seed_differs() -> None:
    a, b, c = simulate(SimConfig(seed=3)), simulate(SimConfig(seed=3)), simulate(SimConfig(seed=4))
    for name in ("time_s", "customer", "terminal", "amount", "fraud", "scenario"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert len(a) != len(c) or not np.array_equal(a.amount, c.amount)


def test_fraud_is_rare_labelled_and_comes_from_every_scenario() -> None:
    for seed in (1, 7, 11):
        tx = simulate(SimConfig(seed=seed))
        assert 40_000 < len(tx) < 80_000
        assert 0.001 < tx.fraud_rate < 0.01, (seed, tx.fraud_rate)
        assert set(np.unique(tx.scenario)) == {0, AMOUNT_OVER_LIMIT, COMPROMISED_TERMINAL, COMPROMISED_CUSTOMER}
        assert np.array_equal(tx.fraud == 1, tx.scenario != 0)
        # Scenario 1 is a hard rule: every amount over the limit is fraud.
        assert tx.fraud[tx.amount > tx.config.amount_limit].all()


def test_transactions_are_time_ordered_and_cluster_in_the_daytime() -> None:
    tx = simulate()
    assert np.all(np.diff(tx.time_s) >= 0)
    assert tx.time_s.max() < tx.config.n_days * DAY_S
    hour = (tx.time_s % DAY_S) // 3600
    assert (hour >= 9).sum() - (hour >= 15).sum() > 3 * ((hour < 3).sum() + (hour >= 21).sum())
    assert (tx.amount >= 0).all()


def test_features_use_only_the_past() -> None:
    tx = simulate()
    rows = np.arange(len(tx))
    x = offline_features(tx, rows)
    assert x.shape == (len(tx), len(FEATURE_NAMES))
    assert np.isfinite(x).all()
    first = np.unique(tx.customer, return_index=True)[1]  # each customer's first transaction
    count_30d = FEATURE_NAMES.index("customer_stats:count_30d")
    assert (x[first, count_30d] == 0).all()
    # Terminal risk looks back only at labels at least 7 days old.
    risk_1d = FEATURE_NAMES.index("terminal_stats:risk_1d")
    early = tx.time_s < 7 * DAY_S
    assert (x[early, risk_1d] == 0).all()
    snap = online_snapshot(tx, 30 * DAY_S)
    assert snap.customer("C00000") is not None and snap.customer("C99999") is None
    assert snap.terminal("X00001") is None
