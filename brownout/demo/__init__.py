"""The demo fraud-detection stack that ``brownout demo`` and docker-compose.yml run.

simulate → features → model (trained, cached) → corpus (payloads, golden set), served by
three services: ``feature_store`` (Feast-like), ``worker`` (GPU worker, dynamic batching,
bounded queue; one or more replicas) and ``model_api`` (/predict and KServe v2; calls its
upstreams under a ``retry`` policy through ``upstream``, failing over between replicas),
plus an optional Redis score cache. ``stack`` starts them on free ports; ``game_day`` puts
Brownout proxies in front (a sidecar per GPU worker replica); ``__main__`` runs each
service as a process.
"""
