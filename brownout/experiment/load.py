"""The ``load`` section: one model per shape, chosen by ``shape`` (default ``constant``).

Every shape also takes ``payloads`` (a JSONL/CSV corpus, relative to the experiment file),
``edge_cases`` (a ratio per case, or ``{ratio, expect, bytes}``), ``connections`` (the
in-flight cap), ``timeout`` (per request) and the engine: ``engine: local`` (this process)
or ``locust`` (Locust workers: ``workers`` started here, ``expect_workers`` started
elsewhere, ``min_workers`` below which a run stops). The models give the file its schema and
types; ``to_shape()``/``edge_case_mix()`` hand the load generator its own objects
(``brownout.load``), whose parsers the loader also runs, so both agree on what is valid.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator

from brownout.experiment.types import Duration, Fraction, InputFile, NonNegative, Positive, PositiveDuration
from brownout.load.edgecases import EdgeCaseMix, parse_edge_cases
from brownout.load.shapes import SHAPE_KEYS, AnyShape, parse_load_shape


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=True)


class EdgeCase(_Model):
    """One edge case in long form: its ratio, the outcome classes expected, its size."""

    ratio: Fraction
    expect: str | list[str] | None = None
    bytes: Annotated[int, Field(ge=1)] | None = None


class _LoadBase(_Model):
    payloads: InputFile | None = None
    edge_cases: dict[str, Fraction | EdgeCase] = Field(default_factory=dict)
    connections: Annotated[int, Field(ge=1)] = 64
    timeout: PositiveDuration = 10.0
    # Where the load comes from: this process (local), or Locust workers (brownout.load.distributed).
    engine: Literal["local", "locust"] = "local"
    workers: Annotated[int, Field(ge=0)] | None = None  # local worker processes (locust; default 1)
    expect_workers: Annotated[int, Field(ge=0)] = 0  # workers started elsewhere to wait for (locust)
    min_workers: Annotated[int, Field(ge=1)] | None = None  # fewer left mid-run: the run stops, exit 4 (default 1)

    @field_validator("workers", "expect_workers", "min_workers")
    @classmethod
    def _locust_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value and info.data.get("engine", "local") != "locust":
            raise ValueError("only with engine: locust")
        return value

    @field_validator("min_workers")
    @classmethod
    def _enough(cls, value: int | None, info: ValidationInfo) -> int | None:
        workers, expect = info.data.get("workers"), info.data.get("expect_workers") or 0
        total = (workers if workers is not None else 0 if expect else 1) + expect
        if value is not None and value > total:
            raise ValueError(f"must be <= workers + expect_workers ({total})")
        return value

    @property
    def local_workers(self) -> int:
        """Worker processes to start: ``workers``, or one when no worker is expected from elsewhere."""
        if self.workers is not None:
            return self.workers
        return 0 if self.expect_workers else 1

    @property
    def duration_s(self) -> float:
        return self.to_shape().duration

    def to_shape(self) -> AnyShape:
        """The load generator's shape (durations already scaled)."""
        data = self.model_dump(by_alias=True, include=_shape_fields(type(self)))
        return parse_load_shape(data, "load")

    def edge_case_mix(self) -> EdgeCaseMix:
        raw: dict[str, Any] = {
            name: v if isinstance(v, float) else v.model_dump(exclude_none=True)
            for name, v in self.edge_cases.items()
        }
        return parse_edge_cases(raw, "load.edge_cases")


def _shape_fields(cls: type[BaseModel]) -> set[str]:
    return {name for name, f in cls.model_fields.items() if (f.alias or name) in SHAPE_KEYS}


class ConstantLoad(_LoadBase):
    """``rate`` requests per second for ``duration``."""

    shape: Literal["constant"] = "constant"
    rate: Positive
    duration: PositiveDuration


class SoakLoad(ConstantLoad):
    """A long constant load (the same keys), to find leaks and slow drift."""

    shape: Literal["soak"] = "soak"  # type: ignore[assignment]


class RampLoad(_LoadBase):
    """From ``from`` to ``to`` requests per second, linearly, over ``duration``."""

    shape: Literal["ramp"]
    from_: NonNegative = Field(alias="from")
    to: NonNegative
    duration: PositiveDuration


class SpikeLoad(_LoadBase):
    """``rate``, then ``peak`` from ``at`` for ``hold``, then ``rate`` again, for ``duration``."""

    shape: Literal["spike"]
    rate: NonNegative
    peak: Positive
    at: Duration
    hold: PositiveDuration
    duration: PositiveDuration


class StepsLoad(_LoadBase):
    """From ``from`` to ``to`` in increments of ``step``, each held for ``step_duration``."""

    shape: Literal["steps"]
    from_: Positive = Field(alias="from")
    to: Positive
    step: Positive
    step_duration: PositiveDuration


class StressLoad(_LoadBase):
    """Step up from ``from`` by ``step`` every ``step_duration`` until the SLA breaks or ``max``."""

    shape: Literal["stress"]
    from_: Positive = Field(alias="from")
    step: Positive
    step_duration: PositiveDuration
    max: Positive


def _shape_of(value: Any) -> str | None:
    if isinstance(value, dict):
        shape = value.get("shape", "constant")
        return shape if isinstance(shape, str) else None
    return getattr(value, "shape", None)


LoadShape = Annotated[
    Annotated[ConstantLoad, Tag("constant")] | Annotated[RampLoad, Tag("ramp")]
    | Annotated[SpikeLoad, Tag("spike")] | Annotated[SoakLoad, Tag("soak")]
    | Annotated[StepsLoad, Tag("steps")] | Annotated[StressLoad, Tag("stress")],
    Discriminator(_shape_of, custom_error_type="shape",
                  custom_error_message="unknown shape; known: constant, ramp, spike, soak, steps, stress"),
]
"""Any load model (they share ``to_shape``, ``edge_case_mix``, ``duration_s`` and the common keys)."""

AnyLoad = ConstantLoad | RampLoad | SpikeLoad | SoakLoad | StepsLoad | StressLoad
