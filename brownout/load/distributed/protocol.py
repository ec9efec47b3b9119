"""What the master and its workers say to each other, as Locust custom messages (msgpack).

Worker → master: ``HELLO`` once connected (pid, host, version), then ``REPORT`` every
``report_every`` seconds of a run: the windows filled since the last report as
``WindowAccumulator.to_dict()`` (counts and a latency histogram, never one message per
request), the response checks of their answers when the experiment checks predictions,
and live counters; the last report of a run is ``final`` and carries the worker's counters,
its edge-case report, its own total and the CPU it used. A report is also the worker's
sign of life during a run.

Master → worker: ``RUN`` (a ``WorkerPlan``: target, the shape as segments, the shared
start time, the worker's epoch, its slice of the corpus, the edge-case mix, its seed, the
window grid), ``SHARE`` (a new epoch when a worker joins or leaves) and ``STOP``.

Every message is validated where it is received; a bad one is an ``InvalidInput`` naming
its field (the worker or master reporting it says which message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from brownout.load.client import parse_target
from brownout.load.edgecases import (
    OUTCOME_CLASSES,
    EdgeCaseMix,
    EdgeCaseReport,
    EdgeCaseSpec,
    EdgeCaseStats,
    Finding,
)
from brownout.load.payloads import PLACEHOLDERS, PayloadSource, RequestTemplate, Template
from brownout.load.shapes import Segment
from brownout.load.distributed.share import Epoch
from faults.errors import InvalidInput
from faults.validation import validate

HELLO, RUN, SHARE, STOP, REPORT = "brownout_hello", "brownout_run", "brownout_share", "brownout_stop", "brownout_report"

NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EpochWire(_Wire):
    from_k: NonNegInt
    slot: NonNegInt
    of: Annotated[int, Field(ge=1)]
    at: float = 0.0

    def epoch(self) -> Epoch:
        return Epoch(self.from_k, self.slot, self.of, self.at)

    @classmethod
    def of_epoch(cls, e: Epoch) -> EpochWire:
        return cls(from_k=e.from_k, slot=e.slot, of=e.of, at=e.at)


class TemplateWire(_Wire):
    """A corpus entry as compiled (``RequestTemplate``): template parts, literal then name, alternating."""

    method: str
    path: list[str] | None = None
    headers: list[tuple[str, str]] = Field(default_factory=list)
    body: list[str] | None = None
    raw_body: bytes | None = None

    @classmethod
    def of(cls, t: RequestTemplate) -> TemplateWire:
        return cls(method=t.method, path=list(t.path.parts) if t.path else None, headers=[(k, v) for k, v in t.headers],
                   body=list(t.body.parts) if t.body else None, raw_body=t.raw_body)

    def template(self, field: str) -> RequestTemplate:
        return RequestTemplate(self.method, _parts(self.path, f"{field}.path"), tuple(self.headers),
                               _parts(self.body, f"{field}.body"), self.raw_body)


def _parts(parts: list[str] | None, field: str) -> Template | None:
    if parts is None:
        return None
    names = parts[1::2]
    if len(parts) % 2 != 1 or any(n.removesuffix(":number") not in PLACEHOLDERS for n in names):
        raise InvalidInput("not a compiled template (literal, placeholder, ..., literal)", field)
    return Template(tuple(parts))


class EdgeCaseWire(_Wire):
    name: str
    ratio: Annotated[float, Field(ge=0, le=1)]
    expect: list[str]


class ChecksWire(_Wire):
    """The per-response invariants a worker checks on its answers (``steady_state.predictions``)."""

    required: list[str] = Field(default_factory=list)
    score: str | None = None
    version_path: str | None = None
    versions: list[str] | None = None


class WorkerPlan(_Wire):
    run: str
    url: str
    shape: str
    duration: Annotated[float, Field(ge=0)]
    segments: list[tuple[float, float, float, float]]
    start_wall: float  # the master's wall clock at run second 0 of this load
    epoch: EpochWire
    templates: list[TemplateWire] = Field(default_factory=list)
    edge_cases: list[EdgeCaseWire] = Field(default_factory=list)
    oversized_bytes: Annotated[int, Field(ge=1)] = 2 * 1024 * 1024
    seed: int = 0
    connections: Annotated[int, Field(ge=1)] = 64
    in_flight_cap: Annotated[int, Field(ge=1)] = 10_000
    request_timeout: PosFloat = 10.0
    max_start_lag: PosFloat = 0.5
    window: PosFloat = 1.0
    window_origin: float = 0.0  # in this load's seconds: the windows line up with the master's
    edge_cases_in_windows: bool = False  # a run's windows count edge cases; brownout load's do not
    checks: ChecksWire | None = None
    report_every: PosFloat = 0.25

    @classmethod
    def parse(cls, data: Any) -> WorkerPlan:
        plan = validate(cls, data, "plan")
        parse_target(plan.url, "plan.url")
        return plan

    def segment_shape(self) -> SegmentShape:
        return SegmentShape(self.duration, tuple(Segment(*s) for s in self.segments))

    def payload_source(self) -> PayloadSource:
        templates = [t.template(f"plan.templates[{i}]") for i, t in enumerate(self.templates)]
        unknown = [c.name for c in self.edge_cases if not set(c.expect) <= set(OUTCOME_CLASSES)]
        if unknown:
            raise InvalidInput(f"unknown outcome classes for {unknown}", "plan.edge_cases")
        mix = EdgeCaseMix(tuple(EdgeCaseSpec(c.name, c.ratio, frozenset(c.expect)) for c in self.edge_cases),
                          self.oversized_bytes)
        return PayloadSource(templates, mix, self.seed)


@dataclass(frozen=True, slots=True)
class SegmentShape:
    """A shape rebuilt from its segments on a worker (only its length and segments are used)."""

    name: ClassVar[str] = "share"
    duration: float
    parts: tuple[Segment, ...]

    def rate_at(self, t: float) -> float:
        for seg in self.parts:
            if seg.start <= t < seg.end:
                span = seg.end - seg.start
                return seg.rate_start + (seg.rate_end - seg.rate_start) * (t - seg.start) / span if span else 0.0
        return 0.0

    def segments(self) -> tuple[Segment, ...]:
        return self.parts


# A corpus this big is sliced (every N-th entry to each worker): a slice is then a sample large
# enough to stand for the whole. A smaller one goes whole to every worker, so each worker's
# traffic has the full mix and losing a worker changes the rate, never the mix.
SLICE_FROM = 5000


def corpus_slice(templates: Sequence[RequestTemplate], member: int, of: int) -> list[TemplateWire]:
    """The corpus entries for the ``member``-th worker of ``of``: the whole corpus, or its slice of a big one."""
    picked = templates[member % of::of] if len(templates) >= SLICE_FROM and of > 1 else templates
    return [TemplateWire.of(t) for t in picked]


def worker_seed(seed: int, member: int) -> int:
    """Each worker its own stream of the seeded choices (corpus entry, edge case, uuids); the same for one seed."""
    return (seed * 1_000_003 + member) % (1 << 63)


def edge_case_wire(mix: EdgeCaseMix) -> list[EdgeCaseWire]:
    return [EdgeCaseWire(name=c.name, ratio=c.ratio, expect=sorted(c.expect)) for c in mix.cases]


class ChecksTally(_Wire):
    """Per-response checks of one window's answers (what ``SteadyStateChecker.feed`` would add)."""

    index: int
    responses: NonNegInt = 0
    problems: dict[str, NonNegInt] = Field(default_factory=dict)
    violations: dict[str, NonNegInt] = Field(default_factory=dict)
    scores: list[float] = Field(default_factory=list)


class WorkerReport(_Wire):
    run: str
    windows: list[dict[str, Any]] = Field(default_factory=list)  # WindowAccumulator.to_dict(), checked on receipt
    checks: list[ChecksTally] = Field(default_factory=list)
    sent: NonNegInt = 0  # so far, edge cases included
    in_flight: NonNegInt = 0
    final: bool = False
    scheduled: NonNegInt = 0
    dropped: NonNegInt = 0
    lag_max_s: float = 0.0
    cpu_s: float = 0.0
    overall: dict[str, Any] | None = None  # the worker's own total of everything it reported
    edge_cases: dict[str, Any] | None = None  # edge_report_dict()
    error: str | None = None  # the run failed on the worker (the master drops the worker)

    @classmethod
    def parse(cls, data: Any) -> WorkerReport:
        return validate(cls, data, "report")


def edge_report_dict(report: EdgeCaseReport) -> dict[str, Any]:
    return {"cases": [[c.name, list(c.expected), c.sent, c.dropped, [list(o) for o in c.outcomes]] for c in report.cases],
            "findings": [[f.edge_case, f.got, f.example_status, f.example_error] for f in report.findings]}


def merge_edge_reports(reports: Sequence[dict[str, Any]]) -> EdgeCaseReport:
    """Several workers' edge-case reports as one: outcomes added, findings recomputed from the sums."""
    sent: dict[str, int] = {}
    dropped: dict[str, int] = {}
    expected: dict[str, tuple[str, ...]] = {}
    outcomes: dict[str, dict[str, int]] = {}
    examples: dict[tuple[str, str], tuple[int, str | None]] = {}
    try:
        for report in reports:
            for name, expect, n_sent, n_dropped, got in report["cases"]:
                expected.setdefault(name, tuple(expect))
                sent[name] = sent.get(name, 0) + int(n_sent)
                dropped[name] = dropped.get(name, 0) + int(n_dropped)
                for outcome, count in got:
                    outcomes.setdefault(name, {})[outcome] = outcomes.get(name, {}).get(outcome, 0) + int(count)
            for name, got, status, error in report["findings"]:
                examples.setdefault((name, got), (int(status), error))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not an edge-case report: {exc}", "report.edge_cases") from None
    cases = tuple(EdgeCaseStats(name, expected[name], sent[name], dropped[name], tuple(sorted(outcomes.get(name, {}).items())))
                  for name in sorted(expected))
    findings = [Finding(c.name, c.expected, got, count, *examples.get((c.name, got), (0, None)))
                for c in cases for got, count in c.outcomes if got not in c.expected]
    findings.sort(key=lambda f: (not f.severe, f.edge_case, f.got))
    return EdgeCaseReport(cases, tuple(findings))
