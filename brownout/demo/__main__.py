"""``python -m brownout.demo <service>``: each demo service as a local process.

These are the commands docker-compose.yml runs::

    python -m brownout.demo feature-store --host 0.0.0.0 --port 8000
    python -m brownout.demo gpu-worker    --host 0.0.0.0 --port 9000 [--queue-size 64 ...]
    python -m brownout.demo model-api     --host 0.0.0.0 --port 8000 \\
        --feature-store http://HOST:PORT --worker http://HOST:PORT[,http://HOST2:PORT2] \\
        [--redis redis://HOST:PORT/0] [--retry none|immediate[:N]|backoff[:N]]
    python -m brownout.demo llm           --host 0.0.0.0 --port 8000 [--token-ms 5]   # the LLM alone
    python -m brownout.demo train                      # fill the cache, print where it is
    python -m brownout.demo generate --out experiments/data   # payload corpus + golden set

Data and model come from the cache (``--cache-dir``, env ``BROWNOUT_DEMO_CACHE``, default
``~/.cache/brownout/demo``), trained on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path

from aiohttp import web

from faults.errors import InvalidInput

from .model import DemoBundle, load_or_train
from .retry import DEFAULT_RETRY, RetryPolicy
from .simulate import SimConfig

SERVICES = ("feature-store", "gpu-worker", "model-api")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m brownout.demo", description="Brownout demo fraud-detection stack")
    sub = p.add_subparsers(dest="command", required=True)

    def data(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--cache-dir", type=Path, default=None, help="model/data cache (env BROWNOUT_DEMO_CACHE)")
        sp.add_argument("--seed", type=int, default=SimConfig().seed)

    for name in SERVICES:
        sp = sub.add_parser(name)
        data(sp)
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--pidfile", type=Path, default=None)
        if name == "gpu-worker":
            sp.add_argument("--max-batch", type=int, default=32)
            sp.add_argument("--max-wait-ms", type=float, default=2.0)
            sp.add_argument("--queue-size", type=int, default=64)
            sp.add_argument("--batch-ms", type=float, default=2.0)
            sp.add_argument("--row-ms", type=float, default=0.05)
            sp.add_argument("--retry-after", type=int, default=1)
        if name == "model-api":
            sp.add_argument("--feature-store", required=True, help="feature store base URL")
            sp.add_argument("--worker", required=True,
                            help="GPU worker base URL, or its replicas' URLs comma-separated (round robin, failover)")
            sp.add_argument("--redis", default=None, help="redis://host:port/db; omit to run uncached")
            sp.add_argument("--feature-timeout-ms", type=float, default=100.0)
            sp.add_argument("--worker-timeout-ms", type=float, default=2000.0)
            sp.add_argument("--cache-ttl-s", type=float, default=5.0)
            sp.add_argument("--cache-timeout-ms", type=float, default=50.0)
            sp.add_argument("--retry", default=DEFAULT_RETRY.spec, metavar="POLICY",
                            help="retries for the feature store and GPU worker: none, immediate[:N] (no wait, "
                                 "Retry-After ignored; N defaults to 3) or backoff[:N] (full jitter, honours "
                                 f"Retry-After); default {DEFAULT_RETRY.spec}")
            sp.add_argument("--retry-base-ms", type=float, default=DEFAULT_RETRY.base_ms, help="backoff: first wait bound")
            sp.add_argument("--retry-cap-ms", type=float, default=DEFAULT_RETRY.cap_ms, help="backoff: largest wait bound")
            sp.add_argument("--retry-budget-ms", type=float, default=DEFAULT_RETRY.budget_ms,
                            help="retries of one call end within this long of its start (and its timeout)")
    llm = sub.add_parser("llm", help="only the OpenAI-compatible streaming endpoint (no model, no data)")
    llm.add_argument("--host", default="127.0.0.1")
    llm.add_argument("--port", type=int, required=True)
    llm.add_argument("--pidfile", type=Path, default=None)
    llm.add_argument("--first-token-ms", type=float, default=5.0)
    llm.add_argument("--token-ms", type=float, default=5.0)
    data(sub.add_parser("train", help="train (or load) the model and print the cache directory"))
    gen = sub.add_parser("generate", help="write transactions.jsonl and golden.jsonl to --out")
    data(gen)
    gen.add_argument("--out", type=Path, required=True)
    return p


def _app(args: argparse.Namespace, bundle: DemoBundle | None) -> web.Application:
    if args.command == "llm":
        from .llm import LlmSettings
        from .llm import create_app as llm_app
        return llm_app(LlmSettings(first_token_ms=args.first_token_ms, token_ms=args.token_ms))
    assert bundle is not None  # every other service loads the bundle first (main)
    if args.command == "feature-store":
        from .feature_store import create_app
        return create_app(bundle.snapshot)
    if args.command == "gpu-worker":
        from .worker import WorkerSettings
        from .worker import create_app as worker_app
        settings = WorkerSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
                                  batch_ms=args.batch_ms, row_ms=args.row_ms, retry_after_s=args.retry_after)
        return worker_app(bundle.model, settings)
    from .model_api import ModelApiSettings
    from .model_api import create_app as api_app
    retry = RetryPolicy.parse(args.retry, base_ms=args.retry_base_ms, cap_ms=args.retry_cap_ms,
                              budget_ms=args.retry_budget_ms)
    return api_app(bundle.model, ModelApiSettings(
        feature_store_url=args.feature_store, worker_url=args.worker, redis_url=args.redis,
        feature_timeout_ms=args.feature_timeout_ms, worker_timeout_ms=args.worker_timeout_ms,
        cache_ttl_s=args.cache_ttl_s, cache_timeout_ms=args.cache_timeout_ms, retry=retry))


async def _serve(args: argparse.Namespace, bundle: DemoBundle | None) -> None:
    from .web import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(_app(args, bundle), args.host, args.port) as served:
        if args.pidfile:
            args.pidfile.write_text(f"{os.getpid()}\n")
        model = bundle.model.version if bundle is not None else "none"
        print(f"{args.command} listening on {served.url} (model {model})", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        bundle = None if args.command == "llm" else load_or_train(args.cache_dir, SimConfig(seed=args.seed))
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if args.command == "train" and bundle is not None:
        print(f"{bundle.directory} (model {bundle.model.version}, {time.perf_counter() - started:.2f}s)")
        return 0
    if args.command == "generate" and bundle is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for src in (bundle.corpus_path, bundle.golden_path):
            shutil.copyfile(src, args.out / src.name)
            print(args.out / src.name)
        return 0
    if "OMP_NUM_THREADS" not in os.environ:
        # One scoring thread: the model is small, and OpenMP's idle threads spin, which on a
        # small machine takes the CPU from every other process (proxies, load, replicas).
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    try:
        with suppress(ImportError):
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(_serve(args, bundle))
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:  # e.g. the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 4
    finally:
        if getattr(args, "pidfile", None):
            with suppress(OSError):
                if args.pidfile.read_text().strip() == str(os.getpid()):
                    args.pidfile.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
