"""The native admin API (DESIGN §2): health, metrics, routes, faults CRUD and the kill switch."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from faults.errors import BrownoutError, InvalidInput, Unauthorized
from proxy.fault_requests import FaultPatch, FaultRequest, parse_body
from proxy.fault_service import FaultService
from proxy.http_errors import error_body, http_status
from proxy.metrics import ProxyMetrics

log = structlog.get_logger("brownout.admin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/metrics"})  # probes and Prometheus scrape without a token
SERVICE: web.AppKey[FaultService] = web.AppKey("service", FaultService)
METRICS: web.AppKey[ProxyMetrics] = web.AppKey("metrics", ProxyMetrics)
ROUTES: web.AppKey[Callable[[], list[dict[str, Any]]]] = web.AppKey("routes")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


def _auth_middleware(token: str | None) -> Any:
    expected = f"Bearer {token}".encode() if token else b""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")
        return await handler(request)

    return auth


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BrownoutError as exc:
        return _json(error_body(exc), http_status(exc))


async def _body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except ValueError as exc:
        raise InvalidInput(f"malformed JSON body: {exc}") from None


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok", "routes": len(request.app[ROUTES]())})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


async def list_routes(request: web.Request) -> web.Response:
    return _json(request.app[ROUTES]())


async def list_faults(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return _json([service.describe(f) for f in service.store.all()])


async def add_fault(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    fault = await service.add(parse_body(FaultRequest, await _body(request)))
    log.info("fault_added", fault_id=fault.id, kind=fault.type, route=fault.route)
    return _json(service.describe(fault), 201)


async def get_fault(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return _json(service.describe(service.store.get(request.match_info["id"])))


async def patch_fault(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    fault = await service.patch(request.match_info["id"], parse_body(FaultPatch, await _body(request)))
    return _json(service.describe(fault))


async def delete_fault(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    fault = await service.remove(request.match_info["id"])
    log.info("fault_removed", fault_id=fault.id, kind=fault.type, route=fault.route)
    return _json(service.describe(fault))


async def clear_faults(request: web.Request) -> web.Response:
    removed = await request.app[SERVICE].clear()
    log.warning("kill_switch", removed=len(removed))
    return _json({"removed": [f.id for f in removed]})


def make_admin_app(service: FaultService, metrics_: ProxyMetrics, routes: Callable[[], list[dict[str, Any]]],
                   token: str | None) -> web.Application:
    app = web.Application(middlewares=[_errors_middleware, _auth_middleware(token)], client_max_size=1024 * 1024)
    app[SERVICE] = service
    app[METRICS] = metrics_
    app[ROUTES] = routes
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/routes", list_routes)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_get("/faults/{id}", get_fault)
    app.router.add_patch("/faults/{id}", patch_fault)
    app.router.add_delete("/faults/{id}", delete_fault)
    return app
