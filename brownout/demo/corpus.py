"""The payload corpus and the golden set (DESIGN §4 data files), from the live-traffic days.

Requests come from the days after the training window (``SERVE_FROM_DAY`` on), so they are
traffic the model never saw. ``expected`` is what the stack returns at ``$.score`` for that
body with healthy dependencies: request-time features plus the feature store's snapshot
rows, scored by the model — the same composition the model API performs.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from .features import request_features
from .simulate import DAY_S, EPOCH_S, Transactions, customer_key, iso_time, terminal_key, transaction_key

if TYPE_CHECKING:
    from .model import DemoBundle

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


def healthy_instance(bundle: DemoBundle, tx: Transactions, row: int) -> list[float]:
    """The feature vector the model API builds for this row when nothing is degraded."""
    when = datetime.fromtimestamp(EPOCH_S + int(tx.time_s[row]), tz=timezone.utc)
    cust = bundle.snapshot.customers[int(tx.customer[row])]
    term = bundle.snapshot.terminals[int(tx.terminal[row])]
    return request_features(float(tx.amount[row]), when) + [float(v) for v in cust] + [float(v) for v in term]


def _jsonl(lines: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(line, separators=(", ", ": ")) + "\n" for line in lines).encode()


def write_corpus(bundle: DemoBundle, tx: Transactions) -> tuple[bytes, bytes]:
    """(corpus JSONL, golden JSONL), both deterministic for a seed."""
    from .model import SERVE_FROM_DAY  # local: model imports this module lazily too

    rng = np.random.default_rng(bundle.config.seed + 1)
    live = np.flatnonzero(tx.time_s >= SERVE_FROM_DAY * DAY_S)
    corpus_rows = np.sort(rng.choice(live, size=min(CORPUS_SIZE, live.shape[0]), replace=False))
    corpus = [{"body": request_body(tx, int(r)), "method": "POST", "path": "/predict"} for r in corpus_rows]

    fraud = live[tx.fraud[live] == 1]
    legit = live[tx.fraud[live] == 0]
    n_fraud = min(GOLDEN_MAX_FRAUD, fraud.shape[0])
    golden_rows = np.sort(np.concatenate([
        rng.choice(fraud, size=n_fraud, replace=False),
        rng.choice(legit, size=min(GOLDEN_SIZE - n_fraud, legit.shape[0]), replace=False),
    ]))
    scores = bundle.model.score(np.array([healthy_instance(bundle, tx, int(r)) for r in golden_rows]))
    golden = [
        {"body": request_body(tx, int(r)), "expected": float(s), "label": int(tx.fraud[r])}
        for r, s in zip(golden_rows, scores)
    ]
    return _jsonl(corpus), _jsonl(golden)
