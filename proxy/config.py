"""The proxy config file, parsed once into frozen models (every key: docs/architecture.md, "Contracts").

Bad config raises ``InvalidInputs`` naming the file, line and key; the CLI exits 3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from faults.errors import InvalidInput
from faults.units import parse_duration
from faults.validation import known_keys
from proxy.addresses import HostPort, parse_host_port, parse_http_upstream
from faults import build_fault, build_match
from faults.errors import InvalidInputs
from proxy.fault_requests import FaultRequest, parse_body
from proxy.recording.config import RecordConfig, RouteRecord, route_record
from proxy.tracing.settings import check_endpoint, check_link_template
from proxy.yamlsource import YamlDocument, errors_from_validation, load_yaml_with_positions

Seconds = Annotated[float, BeforeValidator(parse_duration)]
ROUTE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AdminConfig(_Frozen):
    listen: str = "127.0.0.1:8475"
    token: str | None = Field(default=None, repr=False)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_host_port(value)
        return value

    @property
    def address(self) -> HostPort:
        return parse_host_port(self.listen)

    @model_validator(mode="after")
    def _token_off_loopback(self) -> AdminConfig:
        if not self.address.is_loopback and not self.token:
            raise ValueError("listen: the admin API binds a non-loopback address only with a token (set admin.token)")
        return self


class ToxiproxyApiConfig(_Frozen):
    listen: str = "127.0.0.1:8474"
    allow_remote: bool = False

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> ToxiproxyApiConfig:
        address = parse_host_port(self.listen)
        if not address.is_loopback and not self.allow_remote:
            raise ValueError("listen: the Toxiproxy API has no auth; bind loopback or set allow_remote: true")
        return self


class RouteConfig(_Frozen):
    name: str = Field(pattern=ROUTE_NAME)
    kind: Literal["http", "tcp"] = "http"
    listen: str
    upstream: str
    connect_timeout: Seconds = 5.0
    timeout: Seconds = 30.0  # upstream silent this long → 504
    # A request head not complete this long after it began gets a 408 and the connection closes.
    header_timeout: Annotated[Seconds, Field(gt=0, allow_inf_nan=False)] = 60.0
    # Connections beyond this many open at once get a 503 and are closed.
    max_connections: int = Field(default=10_000, ge=1)
    record: Annotated[RouteRecord | None, BeforeValidator(route_record)] = None  # always on (needs record.dir)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_host_port(value)
        return value

    @model_validator(mode="after")
    def _upstream_matches_kind(self) -> RouteConfig:
        try:
            if self.kind == "http":
                parse_http_upstream(self.upstream)
            else:
                parse_host_port(self.upstream)
        except ValueError as exc:
            raise ValueError(f"upstream: {exc}") from None
        if self.kind == "tcp" and self.record is not None:
            raise ValueError("record: only http routes are recorded")
        return self

    @property
    def address(self) -> HostPort:
        return parse_host_port(self.listen)


class FaultTtlConfig(_Frozen):
    default: Seconds = 300.0
    max: Seconds = 3600.0

    @model_validator(mode="after")
    def _ordered(self) -> FaultTtlConfig:
        if self.default <= 0 or self.default > self.max:
            raise ValueError("default: must be > 0 and <= max")
        return self


class TracingConfig(_Frozen):
    """OpenTelemetry traces over OTLP/HTTP. A key left out falls back to its standard OTEL_* variable
    (the README's Tracing section; ``proxy.tracing.settings``). Shared by the proxy config and the
    experiment file."""

    enabled: bool = True
    otlp_endpoint: str | None = None  # http://HOST:4318 (/v1/traces is added unless the path ends with it)
    sample_ratio: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    service_name: str | None = Field(default=None, min_length=1, max_length=256)
    link_template: str | None = None  # a trace's URL in the UI: http://jaeger:16686/trace/{trace_id}
    queue_size: int = Field(default=2048, ge=1, le=1_000_000)  # spans waiting for export; more are dropped
    batch_delay: Annotated[Seconds, Field(gt=0, le=60, allow_inf_nan=False)] = 1.0
    export_timeout: Annotated[Seconds, Field(gt=0, le=300, allow_inf_nan=False)] = 10.0

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            check_endpoint(value)
        return value

    @field_validator("link_template")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is not None:
            check_link_template(value)
        return value


class ProxyConfig(_Frozen):
    admin: AdminConfig = AdminConfig()
    toxiproxy_api: ToxiproxyApiConfig | None = None
    routes: list[RouteConfig] = Field(min_length=1)
    faults: list[dict[str, Any]] = []
    fault_ttl: FaultTtlConfig = FaultTtlConfig()
    fault_header: bool = False
    seed: int | None = None
    drain_grace: Seconds = 10.0
    max_request_body: int = 64 * 1024 * 1024  # bytes read when a fault needs the body
    tracing: TracingConfig | None = None  # None: off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set
    record: RecordConfig | None = None  # where recordings go; without it nothing is recorded

    @model_validator(mode="after")
    def _unique_routes(self) -> ProxyConfig:
        names = [r.name for r in self.routes]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"routes: route name {name!r} is used twice")
        listens = [r.listen for r in self.routes if r.address.port != 0]
        for listen in listens:
            if listens.count(listen) > 1:
                raise ValueError(f"routes: listen address {listen} is used twice")
        recorded = [r.name for r in self.routes if r.record is not None]
        if recorded and self.record is None:
            raise ValueError(f"routes: route {recorded[0]!r} has record: but the proxy has no record.dir to write to")
        return self

    def route(self, name: str) -> RouteConfig | None:
        return next((r for r in self.routes if r.name == name), None)


def parse_config(doc: YamlDocument) -> ProxyConfig:
    errors = list(doc.errors)
    config = None
    if not isinstance(doc.data, Mapping):
        errors.append(InvalidInput("the config must be a mapping with a 'routes' list"))
    else:
        try:
            config = ProxyConfig.model_validate(doc.data)
        except ValidationError as exc:
            errors.extend(errors_from_validation(exc, doc, known=known_keys(ProxyConfig)))
        raw_routes = doc.data.get("routes") if isinstance(doc.data.get("routes"), list) else []
        kinds = {r.get("name"): r.get("kind", "http") for r in raw_routes if isinstance(r, Mapping)}
        errors.extend(_static_fault_errors(doc.data.get("faults") or [], kinds))
    if errors or config is None:
        raise InvalidInputs([doc.locate(e) for e in errors])
    return config


def _static_fault_errors(faults: Any, route_kinds: Mapping[Any, Any]) -> list[InvalidInput]:
    """Check ``faults:`` entries now, so a bad one is reported with its line like any key."""
    if not isinstance(faults, list):
        return []
    errors: list[InvalidInput] = []
    for index, body in enumerate(faults):
        try:
            request = parse_body(FaultRequest, body)
            if request.route not in route_kinds:
                raise InvalidInput(f"unknown route {request.route!r}", "route")
            if request.start_at is not None or request.end_at is not None:
                raise InvalidInput("a fault of the config file is in force from the start; "
                                   "start_at and end_at are for the admin API",
                                   "start_at" if request.start_at is not None else "end_at")
            if route_kinds[request.route] == "http":
                build_fault(request.type, request.params)
                build_match(request.match)
        except InvalidInputs as exc:
            errors.extend(InvalidInput(e.message, f"faults[{index}].{e.field}" if e.field else f"faults[{index}]") for e in exc.errors)
        except InvalidInput as exc:
            errors.append(InvalidInput(exc.message, f"faults[{index}].{exc.field}" if exc.field else f"faults[{index}]"))
    return errors


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> ProxyConfig:
    """Read, expand ``${VAR}`` and validate the config file at ``path``."""
    return parse_config(load_yaml_with_positions(Path(path), os.environ if env is None else env))
