"""The fleet SLIs' judge on handmade window counts: per sidecar (naming it) and fleet-wide,
no data, and the breakdown the reports print."""

from __future__ import annotations

from brownout.experiment.proxies import SidecarSla, SidecarSlis
from brownout.fleet.slis import breakdown, breakdown_lines, sidecar_judge
from brownout.observe.sidecars import REQUESTS, SidecarDelta, SidecarWindow
from brownout.windows import WindowStats

A, B, C = "http://10.0.0.2:8475", "http://10.0.0.3:8475", "http://10.0.0.4:8475"


def _delta(sidecar: str, **statuses: int) -> SidecarDelta:
    counters = {(REQUESTS, (("route", "api"), ("status", s.removeprefix("s")))): float(n) for s, n in statuses.items()}
    counters[(REQUESTS, (("route", "other"), ("status", "500")))] = 7.0  # another route: not judged
    return SidecarDelta(sidecar, counters)


def _window() -> SidecarWindow:
    return SidecarWindow(3, (_delta(A, s200=90, s503=10), _delta(B, s200=100), SidecarDelta(C, None, note="down")))


STATS = WindowStats(index=3, start=3.0, end=5.0, sent=0, errors=0, dropped=0)


def test_each_sidecar_is_judged_and_named() -> None:
    judge = sidecar_judge(SidecarSlis(scope="each", route="api", sla=SidecarSla(error_rate=0.05, min_throughput=20)))
    by = {(m.sli, m.subject): m for m in judge(_window(), STATS)}
    assert by[("sidecar_error_rate", A)].value == 0.1 and not by[("sidecar_error_rate", A)].holds()
    assert by[("sidecar_error_rate", B)].value == 0.0 and by[("sidecar_error_rate", B)].holds()
    unread = by[("sidecar_error_rate", C)]
    assert unread.value is None and unread.holds() and "could not be read" in (unread.note or "")
    assert by[("sidecar_throughput_rps", A)].value == 50.0 and by[("sidecar_throughput_rps", A)].holds()
    assert not by[("sidecar_throughput_rps", C)].holds()  # a sidecar that cannot be read serves nobody


def test_the_fleet_is_judged_summed() -> None:
    judge = sidecar_judge(SidecarSlis(scope="fleet", route="api", sla=SidecarSla(error_rate=0.05)))
    [measurement] = judge(_window(), STATS)
    assert measurement.subject == "fleet" and measurement.value == 10 / 200 and measurement.holds()
    every_route = sidecar_judge(SidecarSlis(scope="fleet", sla=SidecarSla(error_rate=0.05)))(_window(), STATS)
    assert every_route[0].value == (10 + 14) / 214


def test_the_breakdown_per_phase_and_sidecar() -> None:
    phases = [{"phase": "method", "sidecars": _window().as_dict()}]
    rows = breakdown(phases, "api")
    assert [(r.sidecar, r.requests, r.errors) for r in rows] == [(A, 100, 10), (B, 100, 0), (C, None, 0)]
    lines = breakdown_lines(rows)
    assert lines[0] == "  sidecars (their own counts):" and any(A in line and "10.00" in line for line in lines)
    assert any(C in line and "no data" in line for line in lines)
    assert breakdown_lines(rows[:1]) == []  # one sidecar: nothing to break down
