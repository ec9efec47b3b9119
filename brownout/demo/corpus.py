"""The payload corpus and the golden set (the experiment's data files), from the live-traffic days.

Requests come from the days after the training window (``serve_from_day`` on), so they are
traffic the model never saw. This module knows nothing of how the model is built: it gets a
scoring function and the feature store's snapshot, so ``model`` can import it and not the
other way round. ``expected`` is what the stack returns at ``$.score`` for that
body with healthy dependencies: request-time features plus the feature store's snapshot
rows, scored by the model — the same composition the model API performs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np

from .features import OnlineSnapshot, request_features
from .simulate import DAY_S, EPOCH_S, Transactions, customer_key, iso_time, terminal_key, transaction_key

Scorer = Callable[[np.ndarray], np.ndarray]  # feature rows -> fraud probability per row

CORPUS_SIZE = 800
GOLDEN_SIZE = 200
GOLDEN_MAX_FRAUD = 40


def request_body(tx: Transactions, row: int) -> dict[str, object]:
    return {
        "transaction_id": transaction_key(row),
        "customer_id": customer_key(int(tx.customer[row])),
        "terminal_id": terminal_key(int(tx.terminal[row])),
        "amount": float(tx.amount[row]),
        "timestamp": iso_time(int(tx.time_s[row])),
    }


def healthy_instance(snapshot: OnlineSnapshot, tx: Transactions, row: int) -> list[float]:
    """The feature vector the model API builds for this row when nothing is degraded."""
    when = datetime.fromtimestamp(EPOCH_S + int(tx.time_s[row]), tz=timezone.utc)
    cust = snapshot.customers[int(tx.customer[row])]
    term = snapshot.terminals[int(tx.terminal[row])]
    return request_features(float(tx.amount[row]), when) + [float(v) for v in cust] + [float(v) for v in term]


def _jsonl(lines: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(line, separators=(", ", ": ")) + "\n" for line in lines).encode()


def write_corpus(score: Scorer, snapshot: OnlineSnapshot, tx: Transactions, *, seed: int,
                 serve_from_day: int) -> tuple[bytes, bytes]:
    """(corpus JSONL, golden JSONL) from the days ``serve_from_day`` on; deterministic for a seed."""
    rng = np.random.default_rng(seed + 1)
    live = np.flatnonzero(tx.time_s >= serve_from_day * DAY_S)
    corpus_rows = np.sort(rng.choice(live, size=min(CORPUS_SIZE, live.shape[0]), replace=False))
    corpus = [{"body": request_body(tx, int(r)), "method": "POST", "path": "/predict"} for r in corpus_rows]

    fraud = live[tx.fraud[live] == 1]
    legit = live[tx.fraud[live] == 0]
    n_fraud = min(GOLDEN_MAX_FRAUD, fraud.shape[0])
    golden_rows = np.sort(np.concatenate([
        rng.choice(fraud, size=n_fraud, replace=False),
        rng.choice(legit, size=min(GOLDEN_SIZE - n_fraud, legit.shape[0]), replace=False),
    ]))
    scores = score(np.array([healthy_instance(snapshot, tx, int(r)) for r in golden_rows]))
    golden = [
        {"body": request_body(tx, int(r)), "expected": float(s), "label": int(tx.fraud[r])}
        for r, s in zip(golden_rows, scores)
    ]
    return _jsonl(corpus), _jsonl(golden)
