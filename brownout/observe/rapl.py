"""Energy from RAPL counters (``/sys/class/powercap/intel-rapl:*``; AMD CPUs use the same names).

Each zone's ``energy_uj`` is a microjoule counter that wraps at ``max_energy_range_uj``;
``RaplEnergy.read()`` keeps a cumulative total in joules across wraps (read it more often
than a counter can wrap: minutes at the least). Package zones count with their ``dram``
subzones (DRAM energy is not part of the package's); ``psys`` (the whole platform, which
overlaps the packages) counts only when no package zone exists. When the counters cannot be
read (no RAPL, a VM, not root) the energy is absent and ``absent_reason`` says why.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
_TOP = re.compile(r"^intel-rapl:\d+$")
_SUB = re.compile(r"^intel-rapl:\d+:\d+$")


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str            # package-0, dram, psys...
    max_range_uj: int


class EnergyUnavailable(Exception):
    """Why energy cannot be measured here (the message is shown in reports)."""


def absent_reason(path: Path, exc: OSError) -> str:
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return (f"{path} is readable only by root (Linux restricts RAPL counters since 5.10): run as root "
                f"or grant read access, e.g. chmod o+r {path.parent}/intel-rapl:*/energy_uj")
    return f"cannot read {path}: {exc.strerror or exc}"


def _read_int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise EnergyUnavailable(absent_reason(path, exc)) from None
    try:
        return int(text)
    except ValueError:
        raise EnergyUnavailable(f"{path} holds {text[:40]!r}, not a number of microjoules") from None


def _zone(path: Path) -> RaplZone:
    try:
        name = (path / "name").read_text().strip()
    except OSError:
        name = path.name
    max_range = _read_int(path / "max_energy_range_uj")
    if max_range <= 0:
        raise EnergyUnavailable(f"{path / 'max_energy_range_uj'} is {max_range}; a counter needs a positive range")
    return RaplZone(path=path, name=name, max_range_uj=max_range)


def find_zones(root: Path = POWERCAP) -> tuple[RaplZone, ...]:
    """The zones whose energies add up to the machine's; raises ``EnergyUnavailable``."""
    if not root.is_dir():
        raise EnergyUnavailable(f"no powercap interface at {root} (not Linux, or a kernel without powercap)")
    tops = sorted(p for p in root.iterdir() if _TOP.match(p.name))
    if not tops:
        raise EnergyUnavailable(f"no RAPL zones under {root} (a virtual machine, a container without "
                                f"/sys, or a CPU without RAPL)")
    zones = [_zone(p) for p in tops]
    packages = [z for z in zones if z.name.startswith("package")]
    if not packages:
        return tuple(zones)  # psys alone, or zones with unknown names: as given
    subzones = sorted(p for p in root.iterdir() if _SUB.match(p.name))
    drams = [z for z in (_zone(p) for p in subzones) if z.name == "dram"]
    return tuple(packages + drams)


class RaplEnergy:
    """Cumulative joules since creation, wrap-around handled; ``None`` when absent (see why)."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self.zones: tuple[RaplZone, ...] = ()
        self.absent_reason: str | None = None
        self._last: list[int] = []
        self._total_uj = 0
        try:
            self.zones = find_zones(root)
            self._last = [_read_int(z.path / "energy_uj") for z in self.zones]
        except EnergyUnavailable as exc:
            self.zones, self.absent_reason = (), str(exc)

    @property
    def available(self) -> bool:
        return self.absent_reason is None

    def read(self) -> float | None:
        """Joules used since creation; ``None`` (and ``absent_reason`` set) if unreadable."""
        if self.absent_reason is not None:
            return None
        try:
            raws = [_read_int(z.path / "energy_uj") for z in self.zones]
        except EnergyUnavailable as exc:
            self.absent_reason = str(exc)
            return None
        for i, (zone, raw) in enumerate(zip(self.zones, raws, strict=True)):
            last = self._last[i]
            self._total_uj += raw - last if raw >= last else raw + zone.max_range_uj - last  # wrapped once
            self._last[i] = raw
        return self._total_uj / 1e6
