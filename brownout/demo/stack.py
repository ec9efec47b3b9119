"""Start the demo stack on loopback with free ports, in-process or as real processes.

Two steps, so a proxy can sit between the model API and its dependencies::

    async with start_backends(cache_dir, replicas=2) as b:  # feature store, GPU workers, redis
        ...  # start proxies with routes to b.feature_store_url, b.worker_urls[i], b.redis_address
        settings = ModelApiSettings(feature_store_url=PROXY_FS, worker_url=(PROXY_W0, PROXY_W1), redis_url=PROXY_R)
        async with start_model_api(b.bundle, settings) as api:
            ...  # clients call api.url + "/predict" (or the proxy's model-api route)

``DemoStack.start`` does both at once, the model API wired straight to the backends.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import structlog

from .feature_store import create_app as feature_store_app
from .llm import LLM_PATH
from .model import CACHE_ENV, DemoBundle, load_or_train
from .model_api import ModelApiSettings
from .model_api import create_app as model_api_app
from .processes import ServiceProcess, find_redis_server, redis_server, service_process
from .retry import DEFAULT_RETRY, RetryPolicy
from .simulate import SimConfig
from .web import serve
from .worker import WorkerSettings
from .worker import create_app as worker_app

log = structlog.get_logger("brownout.demo.stack")
T = TypeVar("T")


async def enter_all(stack: AsyncExitStack, managers: Sequence[AbstractAsyncContextManager[T]]) -> list[T]:
    """Enter several context managers at once (children start in parallel); every one that
    started is on ``stack`` before the first failure is raised, so nothing is left running."""
    results = await asyncio.gather(*(stack.enter_async_context(m) for m in managers), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def worker_name(replica: int, replicas: int) -> str:
    """``gpu-worker`` alone, ``gpu-worker-0``, ``gpu-worker-1``... as replicas (process and pid file names)."""
    return "gpu-worker" if replicas == 1 else f"gpu-worker-{replica}"


@dataclass(frozen=True)
class Backends:
    bundle: DemoBundle
    feature_store_url: str
    worker_urls: tuple[str, ...]   # one per GPU worker replica
    redis_url: str | None          # redis://127.0.0.1:PORT/0, None when running uncached
    processes: dict[str, ServiceProcess] = field(default_factory=dict)  # empty in-process

    @property
    def worker_url(self) -> str:
        """The first (or only) GPU worker replica."""
        return self.worker_urls[0]

    @property
    def worker_processes(self) -> tuple[ServiceProcess, ...]:
        """The GPU worker replicas' processes, in replica order (empty in-process)."""
        n = len(self.worker_urls)
        return tuple(self.processes[worker_name(i, n)] for i in range(n) if worker_name(i, n) in self.processes)

    @property
    def redis_address(self) -> str | None:
        """host:port, the upstream of a tcp ``cache`` route."""
        if self.redis_url is None:
            return None
        return self.redis_url.removeprefix("redis://").rsplit("/", 1)[0]


@dataclass(frozen=True)
class ModelApi:
    url: str
    process: ServiceProcess | None = None


def _worker_args(s: WorkerSettings) -> list[str]:
    return ["--max-batch", str(s.max_batch), "--max-wait-ms", str(s.max_wait_ms), "--queue-size", str(s.queue_size),
            "--batch-ms", str(s.batch_ms), "--row-ms", str(s.row_ms), "--retry-after", str(s.retry_after_s)]


def _data_args(bundle: DemoBundle) -> list[str]:
    return ["--cache-dir", str(bundle.directory.parent), "--seed", str(bundle.config.seed)]


@asynccontextmanager
async def start_backends(cache_dir: Path | str | None = None, *, config: SimConfig = SimConfig(),
                         redis: bool = True, worker: WorkerSettings = WorkerSettings(),
                         processes: bool = False, host: str = "127.0.0.1", replicas: int = 1,
                         run_dir: Path | None = None) -> AsyncIterator[Backends]:
    """Feature store, ``replicas`` GPU workers and (when ``redis`` and installed) redis-server.

    ``processes=True`` runs the services as ``python -m brownout.demo`` children with pid
    files in ``run_dir`` (a temp dir by default), so they can really be killed.
    """
    if replicas < 1:
        raise ValueError("replicas must be >= 1")
    bundle = load_or_train(cache_dir, config)  # train once here, so children only load
    async with AsyncExitStack() as stack:
        procs: dict[str, ServiceProcess] = {}
        redis_url: str | None = None
        if redis and find_redis_server() is not None:
            procs["redis"] = await stack.enter_async_context(redis_server(host))
            redis_url = procs["redis"].url
        elif redis:
            log.warning("redis_server_missing", note="redis-server is not installed; the model API runs uncached")
        if processes:
            run = run_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="brownout-demo-")))
            env = {CACHE_ENV: str(bundle.directory.parent)}
            services = [("feature-store", "feature-store", _data_args(bundle))]
            services += [("gpu-worker", worker_name(i, replicas), _data_args(bundle) + _worker_args(worker))
                         for i in range(replicas)]
            started = await enter_all(stack, [service_process(service, args, host=host, run_dir=run, env=env, label=name)
                                              for service, name, args in services])
            procs.update({p.name: p for p in started})
            fs_url = procs["feature-store"].url
            worker_urls = tuple(procs[worker_name(i, replicas)].url for i in range(replicas))
        else:
            fs_url = (await stack.enter_async_context(serve(feature_store_app(bundle.snapshot), host))).url
            worker_urls = tuple([(await stack.enter_async_context(serve(worker_app(bundle.model, worker), host))).url
                                 for _ in range(replicas)])
        yield Backends(bundle=bundle, feature_store_url=fs_url, worker_urls=worker_urls,
                       redis_url=redis_url, processes=procs)


@asynccontextmanager
async def start_model_api(bundle: DemoBundle, settings: ModelApiSettings, *, processes: bool = False,
                          host: str = "127.0.0.1", port: int = 0,
                          run_dir: Path | None = None) -> AsyncIterator[ModelApi]:
    """The model API, its dependency URLs taken from ``settings`` (point them at a proxy)."""
    if not processes:
        async with serve(model_api_app(bundle.model, settings), host, port) as served:
            yield ModelApi(url=served.url)
        return
    retry = settings.retry
    args = _data_args(bundle) + ["--feature-store", settings.feature_store_url,
                                 "--worker", ",".join(settings.worker_urls),
                                 "--feature-timeout-ms", str(settings.feature_timeout_ms),
                                 "--worker-timeout-ms", str(settings.worker_timeout_ms),
                                 "--cache-ttl-s", str(settings.cache_ttl_s),
                                 "--cache-timeout-ms", str(settings.cache_timeout_ms),
                                 "--retry", retry.spec, "--retry-base-ms", str(retry.base_ms),
                                 "--retry-cap-ms", str(retry.cap_ms), "--retry-budget-ms", str(retry.budget_ms)]
    if settings.redis_url:
        args += ["--redis", settings.redis_url]
    with tempfile.TemporaryDirectory(prefix="brownout-demo-") as tmp:
        env = {CACHE_ENV: str(bundle.directory.parent)}
        async with service_process("model-api", args, host=host, port=port, run_dir=run_dir or Path(tmp),
                                   env=env) as proc:
            yield ModelApi(url=proc.url, process=proc)


@dataclass(frozen=True)
class DemoStack:
    backends: Backends
    model_api: ModelApi

    @property
    def url(self) -> str:
        return self.model_api.url

    @property
    def llm_url(self) -> str:
        """The OpenAI-compatible streaming endpoint (served by the model API)."""
        return self.model_api.url + LLM_PATH

    @classmethod
    @asynccontextmanager
    async def start(cls, cache_dir: Path | str | None = None, *, config: SimConfig = SimConfig(),
                    redis: bool = True, worker: WorkerSettings = WorkerSettings(),
                    processes: bool = False, feature_timeout_ms: float = 100.0,
                    host: str = "127.0.0.1", replicas: int = 1,
                    retry: RetryPolicy = DEFAULT_RETRY) -> AsyncIterator[DemoStack]:
        """The whole stack, the model API talking straight to its backends."""
        async with start_backends(cache_dir, config=config, redis=redis, worker=worker,
                                  processes=processes, host=host, replicas=replicas) as backends:
            settings = ModelApiSettings(feature_store_url=backends.feature_store_url, worker_url=backends.worker_urls,
                                        redis_url=backends.redis_url, feature_timeout_ms=feature_timeout_ms,
                                        retry=retry)
            async with start_model_api(backends.bundle, settings, processes=processes, host=host) as api:
                yield cls(backends=backends, model_api=api)
