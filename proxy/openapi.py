"""The admin API's OpenAPI 3.1 document, served at ``GET /openapi.json``.

Request bodies are described by the pydantic models that validate them
(``proxy/fault_requests.py``); responses by the models below, which the schemathesis tests
hold the real responses to. The document is built per proxy: it names the security scheme only
when a token is configured, and lists the fault types and routes that proxy knows.

``/openapi.json`` needs no token, like ``/healthz``: it is read-only, holds no fault, parameter
or secret (route names are on the open ``/metrics`` already), and tools (client generators,
fuzzers) read it before they have a token. The Origin and Host rules apply to it as to every
endpoint.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from proxy.fault_requests import FAULT_ID, FaultPatch, FaultRequest
from proxy.recording.config import RECORDING_ID, RecordingPatch, RecordingRequest

OPEN_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})  # answered without a token


class FaultView(BaseModel):
    """An active fault, as every fault endpoint answers it."""

    id: str
    type: str
    route: str
    params: dict[str, Any]
    match: dict[str, Any]
    created_at: str = Field(description="ISO 8601, UTC")
    expires_at: str | None = Field(description="when the lease runs out; null for faults from the config file")
    injections: int = Field(ge=0)
    seed: int
    state: Literal["staged", "active", "ended"] = Field(
        description="staged: waiting for start_at; active: in force; ended: past end_at, listed until removed")
    start_at: str | None = Field(description="when a staged fault comes into force (RFC 3339, UTC, microseconds)")
    end_at: str | None = Field(description="when it stops being in force, if set")
    activated_at: str | None = Field(description="when it came into force on this proxy's clock; null while staged")
    ended_at: str | None = Field(description="when it stopped being in force (end_at, or its removal)")


class RouteView(BaseModel):
    name: str
    kind: Literal["http", "tcp"]
    listen: str
    upstream: str
    state: Literal["up", "disabled"]
    active_faults: int = Field(ge=0)


class Health(BaseModel):
    status: Literal["ok"]
    routes: int = Field(ge=0)


class Cleared(BaseModel):
    """What the kill switch removed (faults) and ended (recordings)."""

    removed: list[str]
    recordings_ended: list[str]


class RecordingView(BaseModel):
    """A recording, as every recording endpoint answers it."""

    id: str = Field(pattern=RECORDING_ID)
    route: str
    sample: float
    state: Literal["recording", "ended"]
    static: bool = Field(description="started by the config's record: (no duration, no lease)")
    started_at: str = Field(description="ISO 8601, UTC")
    ends_at: str | None = Field(description="when its duration ends")
    expires_at: str | None = Field(description="when its lease runs out unless renewed")
    ended_at: str | None
    end_reason: Literal["duration", "lease", "kill_switch", "stopped", "shutdown"] | None
    lines: int = Field(ge=0)
    bytes: int = Field(ge=0)
    dropped: dict[str, int] = Field(description="exchanges not written, by reason")
    segments: int = Field(ge=0)
    deleted_segments: int = Field(ge=0, description="removed to keep record.max_bytes")
    deleted_lines: int = Field(ge=0)
    redact: dict[str, list[str]]


class FieldError(BaseModel):
    error: str
    field: str | None


class ErrorBody(BaseModel):
    """Every refusal: what is wrong, and the dotted field (or header) it is about."""

    error: str
    field: str | None = Field(description="the dotted path of the offending value, or a header name; null if none")
    errors: list[FieldError] | None = Field(default=None, description="every problem, when there are several")


_MODELS: tuple[type[BaseModel], ...] = (FaultRequest, FaultPatch, FaultView, RouteView, Health, Cleared, ErrorBody,
                                        RecordingRequest, RecordingPatch, RecordingView)
_ERRORS = {
    "400": "invalid body: the field is named",
    "401": "missing or wrong bearer token",
    "403": "a foreign Origin, or (without a token) a Host that is not a loopback name",
    "404": "no such fault or recording",
    "409": "the id is taken, the lease cannot be renewed, or recording is off (no record.dir)",
    "413": "body over 1 MiB",
    "415": "body not sent as application/json",
}


@cache
def _schemas() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}")
    return dict(defs["$defs"])


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(operation_id: str, summary: str, ok: tuple[str, dict[str, Any]], errors: tuple[str, ...], *,
               token: bool, open_: bool = False, body: str | None = None) -> dict[str, Any]:
    codes = ["403", *errors]
    if body is not None:
        codes += ["400", "413", "415"]
    if token and not open_:
        codes.append("401")
    responses: dict[str, Any] = {ok[0]: ok[1]}
    for code in sorted(set(codes)):
        responses[code] = {"$ref": f"#/components/responses/E{code}"}
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses}
    if open_:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


# A created fault's id leads to the operations on it (clients and stateful fuzzers follow these).
_LINKS = {name: {"operationId": name, "parameters": {"id": "$response.body#/id"}}
          for name in ("getFault", "patchFault", "deleteFault")}
_RECORDING_LINKS = {name: {"operationId": name, "parameters": {"id": "$response.body#/id"}}
                    for name in ("getRecording", "patchRecording", "deleteRecording", "recordingData")}


def _enum(schema: dict[str, Any], key: str, values: list[str]) -> dict[str, Any]:
    properties = schema["properties"]
    return {**schema, "properties": {**properties, key: {**properties[key], "enum": values}}}


def openapi_document(*, token: bool, fault_types: list[str], routes: list[str],
                     http_routes: list[str] | None = None) -> dict[str, Any]:
    """The document for one proxy: its token setting, the fault types and routes it knows now."""
    schemas = _schemas()
    request = _enum(_enum(schemas["FaultRequest"], "type", fault_types), "route", routes)
    http = routes if http_routes is None else http_routes
    recording = _enum(schemas["RecordingRequest"], "route", http) if http else schemas["RecordingRequest"]
    schemas = {**schemas, "FaultRequest": request, "RecordingRequest": recording}
    fault = _json(_ref("FaultView"), "the fault")
    faults = _json({"type": "array", "items": _ref("FaultView")}, "every active fault")
    routes_ = _json({"type": "array", "items": _ref("RouteView")}, "every route")
    metrics = {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
    fault_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": FAULT_ID}}
    recording_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": RECORDING_ID}}
    recording = _json(_ref("RecordingView"), "the recording")
    recordings = _json({"type": "array", "items": _ref("RecordingView")}, "this process's recordings")
    lines = {"description": "the recording's lines as written so far, one JSON exchange per line",
             "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    op = {"token": token}
    paths = {
        "/healthz": {"get": _operation("health", "liveness and readiness", ("200", _json(_ref("Health"), "up")),
                                       (), open_=True, **op)},
        "/metrics": {"get": _operation("metrics", "Prometheus metrics", ("200", metrics), (), open_=True, **op)},
        "/openapi.json": {"get": _operation("openapi", "this document", ("200", _json({"type": "object"}, "OpenAPI 3.1")),
                                            (), open_=True, **op)},
        "/routes": {"get": _operation("listRoutes", "routes, upstreams, state, active faults", ("200", routes_),
                                      (), **op)},
        "/faults": {
            "get": _operation("listFaults", "active faults", ("200", faults), (), **op),
            "post": _operation("addFault", "add a fault (a lease)", ("201", {**fault, "links": _LINKS}), ("409",),
                               body="FaultRequest", **op),
            "delete": _operation("clearFaults", "the kill switch: every fault on every route, now",
                                 ("200", _json(_ref("Cleared"), "what was removed")), (), **op),
        },
        "/faults/{id}": {
            "parameters": [fault_id],
            "get": _operation("getFault", "one fault", ("200", fault), ("404",), **op),
            "patch": _operation("patchFault", "renew the lease, change params", ("200", fault), ("404", "409"),
                                body="FaultPatch", **op),
            "delete": _operation("deleteFault", "remove one fault", ("200", fault), ("404",), **op),
        },
        "/recordings": {
            "get": _operation("listRecordings", "recordings, running and ended", ("200", recordings), (), **op),
            "post": _operation("addRecording", "record a route's exchanges (a lease)",
                               ("201", {**recording, "links": _RECORDING_LINKS}), ("409",), body="RecordingRequest", **op),
        },
        "/recordings/{id}": {
            "parameters": [recording_id],
            "get": _operation("getRecording", "one recording", ("200", recording), ("404",), **op),
            "patch": _operation("patchRecording", "renew the lease, or end it (the data stays)", ("200", recording),
                                ("404", "409"), body="RecordingPatch", **op),
            "delete": _operation("deleteRecording", "end it and delete its files", ("200", recording), ("404",), **op),
        },
        "/recordings/{id}/data": {
            "parameters": [recording_id],
            "get": _operation("recordingData", "its lines (JSONL)", ("200", lines), ("404",), **op),
        },
    }
    responses = {f"E{code}": _json(_ref("ErrorBody"), text) for code, text in _ERRORS.items()}
    responses["E401"]["headers"] = {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}
    components: dict[str, Any] = {"schemas": schemas, "responses": responses}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Brownout admin API", "version": "1",
                 "description": "Faults and recordings are leases: they expire unless renewed. DELETE /faults is "
                                "the kill switch: it removes every fault and ends every recording."},
        "paths": paths,
        "components": components,
    }
    if token:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
