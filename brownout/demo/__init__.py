"""The demo fraud-detection stack that ``brownout demo`` and docker-compose.yml run.

simulate → features → model (trained, cached) → corpus (payloads, golden set), served by
three services: ``feature_store`` (Feast-like), ``worker`` (GPU worker, dynamic batching,
bounded queue) and ``model_api`` (/predict and KServe v2), plus an optional Redis score
cache. ``stack`` starts them on free ports; ``__main__`` runs each one as a process.
"""
