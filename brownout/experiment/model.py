"""The experiment file as typed, frozen objects (``brownout schema`` prints their JSON Schema).

Parsed once at the edge by ``brownout.experiment.loader``; after that nothing reads raw
dicts. Unknown keys are errors. Fault ``params``/``match`` stay mappings here (they travel
as JSON to the proxy's admin API) but the loader validates them against the fault
catalogue, and ``FaultStep.build()`` gives the typed fault.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from brownout.experiment.base import FrozenModel as _Model
from brownout.experiment.base import http_url as _http_url
from brownout.experiment.faultcheck import build_step_fault, layer_of
from brownout.experiment.load import LoadShape
from brownout.experiment.proxies import ProxyRef, Safety, Targets
from brownout.experiment.steady import SteadyState
from brownout.experiment.types import (
    Duration,
    Fraction,
    NonNegative,
    RelPath,
    SignalName,
)
from faults.catalogue import known_kinds
from faults.toxics import known_toxics
from proxy.config import TracingConfig

# For editors: every name a fault step may use (HTTP kinds and tcp toxics).
_FAULT_TYPES = sorted(set(known_kinds()) | set(known_toxics()))


class Target(_Model):
    """The clients' entry point, through the proxy."""

    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class FaultStep(_Model):
    """Inject ``fault`` (an HTTP kind or a tcp toxic type) on ``route`` from ``at`` for ``duration``.

    ``at`` is an offset from the start of the method phase; without ``duration`` the fault
    stays until the method phase ends. ``proxy`` names an entry of ``proxies``: its index,
    its ``name`` or one of its URLs; ``targets`` picks members of that group. A toxic's
    ``params`` are its attributes plus ``stream`` and ``toxicity``.
    """

    fault: str = Field(json_schema_extra={"enum": _FAULT_TYPES})
    route: str
    proxy: int | str = 0
    targets: Targets = Field(default_factory=Targets)
    at: Duration = 0.0
    duration: Duration | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    match: dict[str, Any] | None = None
    seed: int | None = None

    @property
    def kind(self) -> Literal["fault"]:
        return "fault"

    @property
    def is_toxic(self) -> bool:
        """True when this step is a tcp toxic rather than an HTTP fault kind."""
        return layer_of(self.fault, self.params) == "tcp"

    def build(self) -> Any:
        """The validated fault (``faults.Fault``) or toxic (``faults.toxics.Toxic``)."""
        return build_step_fault(self.fault, self.params)

    def describe(self) -> str:
        return f"{self.fault}@{self.route}"


class ProcessTarget(_Model):
    """A local process found by its pid file; ``restart`` is a shell command run after ``restart_after``."""

    pidfile: RelPath
    signal: SignalName = "SIGKILL"
    restart: str | None = None
    restart_after: Duration = 0.0


class DockerTarget(_Model):
    """A container, through the Docker Engine API on a unix socket."""

    container: str = Field(min_length=1)
    action: Literal["kill", "stop", "pause", "restart"] = "kill"
    signal: SignalName = "SIGKILL"
    restart_after: Duration | None = None
    socket: str = "/var/run/docker.sock"


class ActionTarget(_Model):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    process: ProcessTarget | None = None
    docker: DockerTarget | None = None

    @model_validator(mode="after")
    def _one(self) -> ActionTarget:
        if (self.process is None) == (self.docker is None):
            raise ValueError("give exactly one of 'process' or 'docker'")
        return self


class ActionStep(_Model):
    """A control-plane action at ``at`` (offset from the method phase's start): ``kill`` a
    backend through a target adapter (``brownout.targets``)."""

    action: Literal["kill"]
    target: ActionTarget
    at: Duration = 0.0

    @property
    def kind(self) -> Literal["action"]:
        return "action"

    def describe(self) -> str:
        if self.target.docker is not None:
            return f"{self.target.docker.action}@docker:{self.target.docker.container}"
        pidfile = self.target.process.pidfile if self.target.process is not None else "?"
        return f"{self.action}@process:{pidfile}"


# Tags hold a space so they never collide with a key when errors are located.
_FAULT_TAG, _ACTION_TAG = "fault step", "action step"


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return _FAULT_TAG if "fault" in value else _ACTION_TAG if "action" in value else None
    return _FAULT_TAG if isinstance(value, FaultStep) else _ACTION_TAG if isinstance(value, ActionStep) else None


MethodStep = Annotated[
    Annotated[FaultStep, Tag(_FAULT_TAG)] | Annotated[ActionStep, Tag(_ACTION_TAG)],
    Discriminator(_step_kind, custom_error_type="step_kind",
                  custom_error_message="a step needs a 'fault' or an 'action' key"),
]


class AbortWhen(_Model):
    """Safeguards: any window past one of these stops the run at once (exit 2)."""

    error_rate: Fraction | None = None
    latency_p99_ms: NonNegative | None = None


class Recovery(_Model):
    within: Duration = 30.0


_RETRY_SPEC = r"^(none|immediate(:(10|\d))?|backoff(:(10|\d))?)$"


class DemoSettings(_Model):
    """How ``brownout demo`` sets up its own stack for this experiment (``brownout run`` ignores it)."""

    retry: str | None = Field(default=None, json_schema_extra={"pattern": _RETRY_SPEC},
                              description="the model API's retry policy: none, immediate[:N] or backoff[:N] "
                                          "(N retries, at most 10); BROWNOUT_DEMO_RETRY overrides it")

    @field_validator("retry")
    @classmethod
    def _spec(cls, value: str | None) -> str | None:
        if value is not None and not re.match(_RETRY_SPEC, value):
            raise ValueError(f"must be none, immediate[:N] or backoff[:N] (N retries, 0 to 10), got {value!r}")
        return value


class Report(_Model):
    dir: Path = Path("reports")  # relative to the working directory, not the file


class Experiment(_Model):
    """A whole experiment file."""

    version: Literal[1]
    title: str = Field(min_length=1)
    description: str = ""
    seed: int = 0
    target: Target
    proxies: tuple[ProxyRef, ...] = ()
    load: LoadShape
    steady_state: SteadyState = Field(default_factory=SteadyState)
    method: tuple[MethodStep, ...] = ()
    abort_when: AbortWhen | None = None
    safety: Safety = Field(default_factory=Safety)
    recovery: Recovery = Field(default_factory=Recovery)
    report: Report = Field(default_factory=Report)
    tracing: TracingConfig | None = None  # OpenTelemetry traces of the run (proxy.tracing.settings)
    demo: DemoSettings | None = None

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this was loaded from (set by the loader)."""
        return self._source

    @property
    def fault_steps(self) -> list[tuple[int, FaultStep]]:
        return [(i, s) for i, s in enumerate(self.method) if isinstance(s, FaultStep)]

    @property
    def action_steps(self) -> list[tuple[int, ActionStep]]:
        return [(i, s) for i, s in enumerate(self.method) if isinstance(s, ActionStep)]

    def proxy_index(self, step: FaultStep) -> int | None:
        """The index of the ``proxies`` entry a fault step names (index, name or URL); None if none."""
        if isinstance(step.proxy, int):
            return step.proxy if 0 <= step.proxy < len(self.proxies) else None
        wanted = step.proxy.rstrip("/")
        for index, ref in enumerate(self.proxies):
            if ref.name == step.proxy or wanted in ref.urls:
                return index
        return None

    def proxy_for(self, step: FaultStep) -> ProxyRef:
        """The entry a fault step goes to (the loader checked it exists)."""
        index = self.proxy_index(step)
        assert index is not None, f"step names no proxy: {step.proxy!r}"
        return self.proxies[index]

    def redacted(self) -> dict[str, Any]:
        """JSON-able dump for reports, with proxy tokens and stream probe headers hidden."""
        data = self.model_dump(mode="json", by_alias=True)
        for proxy in data.get("proxies", []):
            if proxy.get("token"):
                proxy["token"] = "***"
        steady = data.get("steady_state") or {}
        streams = steady.get("streams") or {}
        if streams.get("headers"):  # may carry an API key
            streams["headers"] = dict.fromkeys(streams["headers"], "***")
        for holder in [*(steady.get("probes") or []), steady.get("cost") or {}]:
            if holder.get("auth"):  # Prometheus credentials
                holder["auth"] = "***"
        return data
