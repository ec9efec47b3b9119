"""The experiment's ``proxies:`` entries (groups of sidecars), a step's ``targets:`` and ``safety:``."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from brownout.experiment.base import FrozenModel as _Model
from brownout.experiment.base import http_url as _http_url
from brownout.experiment.types import Fraction, NonNegative


class ProxyRef(_Model):
    """A group of sidecars, one Brownout proxy, or an external Toxiproxy server.

    ``admin`` is one proxy's admin API or a list of them; ``discover`` a URL whose host name
    resolves (every A/AAAA record, at preflight) to the group's sidecars, as a compose service
    with replicas or a Kubernetes headless Service does; ``toxiproxy`` an external Toxiproxy
    server's API. ``name`` lets a step name the entry. ``token`` goes to every member and is
    never printed or written to reports.
    """

    name: str | None = Field(default=None, min_length=1, max_length=64)
    admin: str | tuple[str, ...] | None = None
    discover: str | None = None
    toxiproxy: str | None = None
    token: str | None = Field(default=None, repr=False)

    @field_validator("admin")
    @classmethod
    def _admins(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        if isinstance(value, tuple):
            if not value:
                raise ValueError("give at least one admin URL")
            urls = tuple(_http_url(v).rstrip("/") for v in value)
            if len(set(urls)) != len(urls):
                raise ValueError("a sidecar is listed twice")
            return urls
        return None if value is None else _http_url(value)

    @field_validator("toxiproxy")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("discover")
    @classmethod
    def _discover(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(_http_url(value))
        try:
            parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in {value!r}: {exc}") from None
        if not parts.hostname or parts.path.strip("/") or parts.query or parts.username is not None:
            raise ValueError(f"give scheme, host name and port only, as http://brownout-sidecar:8475; got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one(self) -> ProxyRef:
        if sum(v is not None for v in (self.admin, self.discover, self.toxiproxy)) != 1:
            raise ValueError("give exactly one of 'admin' (a Brownout proxy, or a list of them), 'discover' "
                             "(a name that resolves to every sidecar) or 'toxiproxy' (an external Toxiproxy server)")
        return self

    @property
    def admins(self) -> tuple[str, ...]:
        """The admin URLs as written (empty for ``discover`` and ``toxiproxy``)."""
        if self.admin is None:
            return ()
        return self.admin if isinstance(self.admin, tuple) else (self.admin,)

    @property
    def fixed_size(self) -> int | None:
        """How many sidecars the group has, when known before resolving (None for ``discover``)."""
        return None if self.discover is not None else max(len(self.admins), 1)

    @property
    def url(self) -> str:
        """The entry's first URL (one admin API, the discovery URL or the Toxiproxy server)."""
        return (self.admins[0] if self.admins else None) or self.discover or self.toxiproxy or ""

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL that names this entry in a step's ``proxy:``."""
        return tuple(u.rstrip("/") for u in (*self.admins, self.discover, self.toxiproxy) if u is not None)

    @property
    def label(self) -> str:
        """How reports name the entry."""
        if self.name is not None:
            return self.name
        if isinstance(self.admin, tuple) and len(self.admin) > 1:
            return f"{self.admin[0]} (+{len(self.admin) - 1})"
        return self.url


class Targets(_Model):
    """Which members of the step's group get the fault: ``all`` (default), ``one``, ``fixed``
    (``value`` of them) or ``percent`` (``value`` % of them, rounded down, at least one).
    Chosen with a generator seeded by the experiment's seed and the step's index.
    ``min_armed``: how many of the chosen must be armed for the step to go on (default all)."""

    mode: Literal["all", "one", "fixed", "percent"] = "all"
    value: float | None = Field(default=None, gt=0)
    min_armed: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _value(self) -> Targets:
        if self.mode in ("all", "one") and self.value is not None:
            raise ValueError(f"mode {self.mode!r} takes no value")
        if self.mode == "fixed" and (self.value is None or self.value != int(self.value)):
            raise ValueError("mode 'fixed' needs value: a whole number of sidecars")
        if self.mode == "percent" and (self.value is None or self.value > 100):
            raise ValueError("mode 'percent' needs value: a percentage in (0, 100]")
        return self


class Safety(_Model):
    """Limits every step of the method must keep."""

    max_targets_percent: float = Field(default=100.0, gt=0, le=100)


class SidecarSla(_Model):
    """Bounds on what the sidecars themselves counted in a window (``brownout_requests_total``);
    an absent bound is not checked."""

    error_rate: Fraction | None = None  # 5xx answers / requests
    min_throughput: NonNegative | None = None  # requests per second through the sidecar (or the fleet)


class SidecarSlis(_Model):
    """``steady_state.sidecars``: judge the sidecars' own request counts every window, for the
    fleet summed (``scope: fleet``) or for each sidecar (``scope: each``: a verdict per sidecar,
    naming it). ``route``: one route's requests only (default: every route)."""

    scope: Literal["fleet", "each"] = "fleet"
    route: str | None = Field(default=None, min_length=1, max_length=64)
    sla: SidecarSla = Field(default_factory=SidecarSla)
