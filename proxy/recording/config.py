"""What configures recording: the proxy's ``record:`` (where and how much), a route's ``record:``
(always on), and the admin API's bodies (``POST /recordings``, ``PATCH /recordings/{id}``).

The proxy-level ``record:`` is what allows recording at all; without it a route's ``record:``
is a config error and ``POST /recordings`` a 409. A client never names a path: files go under
``record.dir``, named from generated ids.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from proxy.fault_requests import Seconds
from proxy.recording.redact import Redaction

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1000**3, "gib": 1024**3}
MAX_SIZE = 1 << 50


def parse_size(value: object) -> int:
    """Bytes from ``65536``, ``"64KiB"``, ``"10MB"``, ``"1g"`` (k, m, g are binary)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size in bytes (64KiB, 10MB), got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower() or None])
    else:
        raise ValueError(f"must be a size in bytes (64KiB, 10MB), got {value!r}")
    if not 0 < size <= MAX_SIZE:
        raise ValueError(f"must be > 0 and at most 1 PiB, got {value!r}")
    return size


Size = Annotated[int, BeforeValidator(parse_size)]


class RecordConfig(BaseModel):
    """The proxy's ``record:``: where recordings go and the bounds that protect the disk and the data path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dir: Path
    max_file_bytes: Size = 64 * 1024**2  # a recording's file rotates to a new segment at this size
    max_bytes: Size = 1024**3  # every segment in ``dir`` together; over it, the oldest segments are deleted
    max_body: Size = 1024**2  # an exchange with a bigger body (either way) is skipped and counted
    queue_bytes: Size = 16 * 1024**2  # exchanges waiting for the writer; past it they are dropped and counted
    redact: Redaction = Redaction()  # added to each recording's own (the defaults always apply)

    @model_validator(mode="after")
    def _cap_holds_a_file(self) -> RecordConfig:
        if self.max_file_bytes > self.max_bytes:
            raise ValueError("max_file_bytes: must be <= max_bytes (the cap on the whole folder)")
        return self


class RouteRecord(BaseModel):
    """A route's ``record:`` (``true`` or ``{sample, redact}``): recorded from start to stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample: float = Field(default=1.0, gt=0, le=1)
    redact: Redaction = Redaction()


def route_record(value: Any) -> Any:
    """``record: true`` is ``record: {}``; ``false`` is no recording."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


RECORDING_ID = r"^rec-[0-9a-z-]{1,64}$"


class RecordingRequest(BaseModel):
    """The body of ``POST /recordings``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    route: str = Field(max_length=64, description="an http route's name")
    sample: float = Field(default=1.0, gt=0, le=1, description="the share of exchanges recorded")
    duration: Seconds | None = Field(default=None, description="how long to record; default and maximum are the "
                                                               "proxy's fault_ttl")
    ttl: Seconds | None = Field(default=None, description="the lease (renew with PATCH); default: the duration")
    redact: Redaction = Field(default_factory=Redaction, description="more headers, JSON paths and regular "
                              "expressions to redact (Authorization, Cookie, Set-Cookie, Proxy-Authorization and "
                              "X-Api-Key always are)")


class RecordingPatch(BaseModel):
    """The body of ``PATCH /recordings/{id}``: renew the lease, or end the recording now (its data stays)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    ttl: Seconds | None = None
    end: bool = False
