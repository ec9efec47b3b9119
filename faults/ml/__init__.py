"""ML-aware fault kinds: protocol detection, feature-store, tensor, score, cache and version faults.

Each kind is one module here, registered in ``faults.catalogue.KINDS``; the SSE stream kind
lives in ``faults.stream`` (framing in ``faults.sse``).
"""
