"""The native admin API: health, metrics, routes, faults CRUD, the kill switch and its own
OpenAPI document. Who may call it is decided in ``proxy/admin_guard.py``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from faults.errors import BrownoutError
from proxy.admin_guard import guard_middleware, require_json
from proxy.admin_recordings import RECORDINGS, add_recording_routes
from proxy.fault_requests import FaultPatch, FaultRequest, parse_body, parse_json
from proxy.fault_service import FaultService
from proxy.http_errors import error_body, http_status
from proxy.metrics import ProxyMetrics
from proxy.openapi import OPEN_PATHS, openapi_document
from proxy.recording.service import RecordingService

log = structlog.get_logger("brownout.admin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVICE: web.AppKey[FaultService] = web.AppKey("service", FaultService)
METRICS: web.AppKey[ProxyMetrics] = web.AppKey("metrics", ProxyMetrics)
ROUTES: web.AppKey[Callable[[], list[dict[str, Any]]]] = web.AppKey("routes")
TOKEN: web.AppKey[bool] = web.AppKey("token", bool)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal is a JSON ``{error, field}`` body, aiohttp's own (404, 405, 413) included."""
    try:
        return await handler(request)
    except BrownoutError as exc:
        status = http_status(exc)
        response = _json(error_body(exc), status)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="brownout"'
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.status == 413 else f"{exc.reason}: {request.method} {request.path[:200]}"
        response = _json({"error": message, "field": None}, exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


async def _body(request: web.Request) -> Any:
    require_json(request)
    return parse_json(await request.read())


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok", "routes": len(request.app[ROUTES]())})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


async def openapi(request: web.Request) -> web.Response:
    described = request.app[ROUTES]()
    routes = [route["name"] for route in described]
    http_routes = [route["name"] for route in described if route["kind"] == "http"]
    return _json(openapi_document(token=request.app[TOKEN], fault_types=request.app[SERVICE].known_types(),
                                  routes=routes, http_routes=http_routes))


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
    """The kill switch: every fault removed, every recording ended (their data stays)."""
    removed = await request.app[SERVICE].clear()
    recordings = request.app.get(RECORDINGS)
    ended = recordings.end_all("kill_switch") if recordings is not None else []
    log.warning("kill_switch", removed=len(removed), recordings_ended=len(ended))
    return _json({"removed": [f.id for f in removed], "recordings_ended": ended})


def make_admin_app(service: FaultService, metrics_: ProxyMetrics, routes: Callable[[], list[dict[str, Any]]],
                   token: str | None, recordings: RecordingService | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors_middleware, guard_middleware(token, OPEN_PATHS)],
                          client_max_size=1024 * 1024)
    app[SERVICE] = service
    app[METRICS] = metrics_
    app[ROUTES] = routes
    app[TOKEN] = bool(token)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/routes", list_routes)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_get("/faults/{id}", get_fault)
    app.router.add_patch("/faults/{id}", patch_fault)
    app.router.add_delete("/faults/{id}", delete_fault)
    if recordings is not None:
        add_recording_routes(app, recordings)
    return app
