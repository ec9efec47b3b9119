"""Where finished spans go: a bounded queue, a thread that encodes batches as OTLP protobuf and
POSTs them (``queue``, ``records``, ``otlp_http``). The proxy, the runner, the load generator
and the demo's services each own one ``SpanExport``; ``put`` never blocks.

The resource says ``service.name`` (the settings'), ``telemetry.sdk.*`` (Brownout's) and what
OTEL_RESOURCE_ATTRIBUTES adds (``k=v,k2=v2``, values URL-encoded; service.name set here wins).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from importlib import metadata

from proxy.tracing.otlp_http import OtlpHttpSender, parse_headers
from proxy.tracing.queue import ExportQueue
from proxy.tracing.records import SpanRecord, encode_export
from proxy.tracing.settings import TracingSettings


def version() -> str:
    try:
        return metadata.version("brownout")
    except metadata.PackageNotFoundError:
        return "unknown"


def resource_attributes(service_name: str, env: Mapping[str, str]) -> dict[str, str]:
    attributes = parse_headers(env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    attributes.update({"service.name": service_name, "telemetry.sdk.name": "brownout",
                       "telemetry.sdk.language": "python", "telemetry.sdk.version": version(),
                       "process.runtime.version": platform.python_version()})
    return attributes


class SpanExport:
    def __init__(self, settings: TracingSettings, env: Mapping[str, str], scope: str = "brownout") -> None:
        self.settings = settings
        self._resource = resource_attributes(settings.service_name, env)
        self._scope, self._version = scope, version()
        self._sender = OtlpHttpSender(settings.endpoint, env, settings.export_timeout_s)
        self.queue: ExportQueue[SpanRecord] = ExportQueue(self._send, stop=self._sender.stop,
                                                          queue_size=settings.queue_size, delay_s=settings.batch_delay_s)
        self.put = self.queue.put

    def _send(self, batch: Sequence[SpanRecord]) -> bool:
        return self._sender.send(encode_export(batch, self._resource, self._scope, self._version))

    def close(self, timeout_s: float = 5.0) -> None:
        """Export what is queued within ``timeout_s``, then stop (blocking: call it off the event loop)."""
        self.queue.shutdown(timeout_s)
