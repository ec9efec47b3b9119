"""Whether and how to trace: a ``tracing:`` block, else the standard OTEL_* variables.

Each key of the block wins over its variable; a key left out falls back to the variable, then
to the default. Tracing is on when an endpoint comes from either (and ``enabled`` is not
false); with no block, ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keep it off.

| setting        | block key       | variables (in order)                                           | default |
| endpoint       | otlp_endpoint   | OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is), OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) | off |
| sampling       | sample_ratio    | OTEL_TRACES_SAMPLER + OTEL_TRACES_SAMPLER_ARG                   | parent-based, 1.0 |
| service name   | service_name    | OTEL_SERVICE_NAME                                               | the caller's |

``queue_size`` and ``batch_delay`` fall back to OTEL_BSP_MAX_QUEUE_SIZE and OTEL_BSP_SCHEDULE_DELAY
(milliseconds). A ``sample_ratio`` is parent-based: an incoming sampled flag decides, the ratio applies to new
traces. Of the samplers, ``always_on``, ``always_off``, ``traceidratio`` and their
``parentbased_`` forms are understood (the non-parent-based ones ignore the incoming flag and
judge the trace id alone); any other is an error naming the variable. The exporter itself
reads ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS``, ``..._CERTIFICATE`` and ``..._COMPRESSION``
(gzip when unset); ``OTEL_RESOURCE_ATTRIBUTES`` adds to the resource.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from faults.errors import InvalidInput

if TYPE_CHECKING:
    from proxy.config import TracingConfig

TRACES_PATH = "/v1/traces"
_SAMPLERS = {  # name → (ratio from the argument?, fixed ratio, parent-based)
    "always_on": (False, 1.0, False), "always_off": (False, 0.0, False), "traceidratio": (True, 1.0, False),
    "parentbased_always_on": (False, 1.0, True), "parentbased_always_off": (False, 0.0, True),
    "parentbased_traceidratio": (True, 1.0, True),
}
_LINK_FIELDS = frozenset({"trace_id", "span_id"})


@dataclass(frozen=True)
class TracingSettings:
    endpoint: str  # the full traces URL
    sample_ratio: float
    follow_parent: bool
    service_name: str
    link_template: str | None = None
    queue_size: int = 2048
    batch_delay_s: float = 1.0
    export_timeout_s: float = 10.0

    def link(self, trace_id: str, span_id: str = "") -> str | None:
        return None if self.link_template is None else self.link_template.format(trace_id=trace_id, span_id=span_id)


def check_endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL (the collector's OTLP/HTTP port, e.g. http://HOST:4318), got {value!r}")
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        raise ValueError(f"bad port in {value!r}") from None
    return value


def check_link_template(value: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a template: {exc}") from None
    unknown = names - _LINK_FIELDS
    if unknown:
        raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; a link template may use {{trace_id}} and {{span_id}}")
    return value


def traces_url(base: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base URL (kept as is when it already ends in /v1/traces)."""
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def resolve_tracing(config: TracingConfig | None, env: Mapping[str, str], *, default_service: str,
                    where: str = "tracing") -> TracingSettings | None:
    """The settings in force, or None when tracing is off. Bad variables raise ``InvalidInput``."""
    if config is not None and not config.enabled:
        return None
    if config is None and (_true(env.get("OTEL_SDK_DISABLED")) or env.get("OTEL_TRACES_EXPORTER", "").strip() == "none"):
        return None
    endpoint = _endpoint(config, env, where)
    if endpoint is None:
        return None
    if config is not None and config.sample_ratio is not None:
        ratio, follow_parent = config.sample_ratio, True
    else:
        ratio, follow_parent = _env_sampler(env)
    service = (config.service_name if config is not None else None) or env.get("OTEL_SERVICE_NAME", "").strip() or default_service
    given = config.model_fields_set if config is not None else set()
    queue_size = config.queue_size if config is not None and "queue_size" in given else \
        _env_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1_000_000)
    delay_s = config.batch_delay if config is not None and "batch_delay" in given else \
        _env_number(env, "OTEL_BSP_SCHEDULE_DELAY", 1000, 1, 60_000) / 1000
    return TracingSettings(endpoint, ratio, follow_parent, service, config.link_template if config else None,
                           int(queue_size), delay_s, config.export_timeout if config else 10.0)


def _endpoint(config: TracingConfig | None, env: Mapping[str, str], where: str) -> str | None:
    if config is not None and config.otlp_endpoint is not None:
        return traces_url(config.otlp_endpoint)
    for name, url in (("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", lambda v: v),
                      ("OTEL_EXPORTER_OTLP_ENDPOINT", traces_url)):
        value = env.get(name, "").strip()
        if value:
            try:
                check_endpoint(value)
            except ValueError as exc:
                raise InvalidInput(str(exc), name) from None
            return url(value)
    if config is not None:
        raise InvalidInput("no endpoint: set otlp_endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT), or enabled: false",
                           f"{where}.otlp_endpoint")
    return None


def _env_sampler(env: Mapping[str, str]) -> tuple[float, bool]:
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in _SAMPLERS:
        raise InvalidInput(f"unsupported sampler {name!r}; Brownout understands {', '.join(_SAMPLERS)}",
                           "OTEL_TRACES_SAMPLER")
    from_arg, ratio, parent_based = _SAMPLERS[name]
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if from_arg and raw:
        try:
            ratio = float(raw)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise InvalidInput(f"must be a ratio within [0, 1], got {raw!r}", "OTEL_TRACES_SAMPLER_ARG")
    return ratio, parent_based


def _env_number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(f"must be a whole number within [{low}, {high}], got {raw!r}", name)
    return int(raw)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"
