"""The admin API's recordings: start, list, renew or end, delete, and download as JSONL.

``POST /recordings {route, sample, duration, ttl, redact}`` → 201 with the recording;
``GET /recordings``; ``GET|PATCH|DELETE /recordings/{id}`` (``PATCH {ttl}`` renews the lease,
``PATCH {end: true}`` ends it keeping its data, ``DELETE`` ends it and deletes its files);
``GET /recordings/{id}/data`` streams its lines as written so far (``application/x-ndjson``).
The token, Origin and Host rules apply to every one of them (``proxy/admin_guard.py``).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web

from proxy.admin_guard import require_json
from proxy.fault_requests import parse_body, parse_json
from proxy.recording.config import RecordingPatch, RecordingRequest
from proxy.recording.service import RecordingService

log = structlog.get_logger("brownout.admin")
RECORDINGS: web.AppKey[RecordingService] = web.AppKey("recordings", RecordingService)
NDJSON = "application/x-ndjson"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


async def _body(request: web.Request) -> Any:
    require_json(request)
    return parse_json(await request.read())


async def list_recordings(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    return _json([service.describe(r) for r in service.recordings.values()])


async def add_recording(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    rec = service.start_request(parse_body(RecordingRequest, await _body(request)))
    return _json(service.describe(rec), 201)


async def get_recording(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    return _json(service.describe(service.get(request.match_info["id"])))


async def patch_recording(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    patch: RecordingPatch = parse_body(RecordingPatch, await _body(request))
    rid = request.match_info["id"]
    service.get(rid)
    if patch.ttl is not None:
        service.renew(rid, patch.ttl)
    if patch.end:
        service.end(rid, "stopped")
    return _json(service.describe(service.get(rid)))


async def delete_recording(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    return _json(service.describe(await service.remove(request.match_info["id"])))


async def recording_data(request: web.Request) -> web.StreamResponse:
    service = request.app[RECORDINGS]
    rid = request.match_info["id"]
    chunks = service.data(rid)
    first = await anext(chunks, b"")  # a missing id is a 404 before the 200 goes out
    response = web.StreamResponse(headers={"Content-Type": NDJSON,
                                           "Content-Disposition": f'attachment; filename="{rid}.jsonl"'})
    await response.prepare(request)
    if first:
        await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def add_recording_routes(app: web.Application, service: RecordingService) -> None:
    app[RECORDINGS] = service
    app.router.add_get("/recordings", list_recordings)
    app.router.add_post("/recordings", add_recording)
    app.router.add_get("/recordings/{id}", get_recording)
    app.router.add_patch("/recordings/{id}", patch_recording)
    app.router.add_delete("/recordings/{id}", delete_recording)
    app.router.add_get("/recordings/{id}/data", recording_data)
