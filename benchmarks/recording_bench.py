"""Micro-benchmark: CPU time to turn one typical exchange into a recording line.

    .venv/bin/python -m benchmarks.recording_bench [--n 20000]

A typical exchange: a POST /predict with 8 request headers (one Authorization) and a
~300-byte JSON body (a customer object, a card number, a list of items), answered with
5 headers (one Set-Cookie) and a ~120-byte JSON score. Rows: the default redaction
(headers only), the default plus two JSON paths and two patterns (an email and a 16-digit
card number), that again with the answer streamed as 6 SSE events, and decoding the line
back. Each row is the best of 5 rounds of ``--n`` calls (process CPU time), in µs per exchange.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from proxy.recording import Exchange, RawResponse, Redaction, encode, parse_line

_REQUEST = {
    "transaction_id": "TX00053450", "customer": {"id": "C00086", "email": "jane.doe@example.com", "tier": "gold"},
    "card": "4111111111111111", "amount": 6.25, "currency": "EUR", "terminal_id": "T00997",
    "timestamp": "2025-04-25T00:00:00Z", "items": [{"sku": "A1", "qty": 1, "price": 4.0}, {"sku": "B2", "qty": 3, "price": 0.75}],
}
_ANSWER = {"score": 0.00011848146521525338, "model": "fraud-v3", "request_id": "r-7f3a", "latency_ms": 3.2, "flags": []}
_HEADERS = [
    ("Host", "model.internal:8080"), ("User-Agent", "python-requests/2.31"), ("Accept", "application/json"),
    ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"), ("Authorization", "Bearer sk-live-4f9c2a7e1b"),
    ("Content-Type", "application/json"), ("Content-Length", "312"),
]
_ANSWER_HEADERS = [
    ("Content-Type", "application/json"), ("Content-Length", "120"), ("Date", "Sat, 05 Dec 2026 02:52:01 GMT"),
    ("Server", "uvicorn"), ("Set-Cookie", "sid=abc; HttpOnly"),
]


def _exchange(sse: bool = False) -> Exchange:
    if sse:
        events = b"".join(b"data: %s\n\n" % json.dumps({"token": f"t{i}", "score": 0.1 * i}).encode() for i in range(5))
        answer = RawResponse(200, [("Content-Type", "text/event-stream")], events + b"data: [DONE]\n\n", 12.5)
    else:
        answer = RawResponse(200, _ANSWER_HEADERS, json.dumps(_ANSWER).encode(), 12.5)
    return Exchange("POST", "/predict?v=2", _HEADERS, json.dumps(_REQUEST).encode(), 1_714_000_000.123, (), answer)


def _best_us(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="calls per round (5 rounds; default 20000)")
    n = max(1, min(parser.parse_args().n, 1_000_000))
    plain, stream = _exchange(), _exchange(sse=True)
    default = Redaction()
    full = Redaction.parse({
        "json_paths": ["$.customer.email", "$.items[*].price"],
        "patterns": [r"\b\d{16}\b", r"[\w.+-]+@[\w-]+\.[\w.]+"],
    })
    line = encode(plain, full)
    assert isinstance(line, str) and "sk-live" not in line and "jane.doe" not in line
    rows = [
        ("encode, default redaction (headers)", lambda: encode(plain, default)),
        ("encode, + 2 JSON paths + 2 patterns", lambda: encode(plain, full)),
        ("encode SSE answer (6 events), same redaction", lambda: encode(stream, full)),
        ("decode the line (parse_line)", lambda: parse_line(line)),
    ]
    print(f"| recording line ({len(line)} bytes) | µs per exchange |\n| --- | ---: |")
    for name, fn in rows:
        print(f"| {name} | {_best_us(fn, n):.1f} |")


if __name__ == "__main__":
    main()
