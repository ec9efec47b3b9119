"""The fleet's kill switch: ``DELETE /faults`` on every sidecar at once, and what each said."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from brownout.admin_client import AdminClient
from brownout.fleet.discovery import Sidecar, resolve_name
from faults.errors import BrownoutError


@dataclass(frozen=True)
class Cleared:
    """One sidecar's answer: the faults it removed, or why it could not be reached."""

    admin: str
    removed: tuple[str, ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"admin": self.admin, "error": self.error}
        return {"admin": self.admin, "removed": list(self.removed)}


async def _clear_one(admin: str, token: str | None) -> Cleared:
    try:
        async with AdminClient(admin, token) as client:
            answer = await client.clear()
    except BrownoutError as exc:
        return Cleared(admin, error=str(exc))
    return Cleared(admin, removed=tuple(str(i) for i in answer.get("removed", [])))


async def clear_fleet(admins: Sequence[str], discover: Sequence[str], token: str | None) -> list[Cleared]:
    """Every sidecar named or resolved, cleared in parallel; a name that does not resolve is
    reported like an unreachable sidecar (the others are cleared all the same)."""
    found: set[Sidecar] = {Sidecar.from_url(a) for a in admins}
    failed: list[Cleared] = []
    for url, resolved in zip(discover, await asyncio.gather(*(resolve_name(u) for u in discover),
                                                             return_exceptions=True), strict=True):
        if isinstance(resolved, BrownoutError):
            failed.append(Cleared(url, error=str(resolved)))
        elif isinstance(resolved, BaseException):
            raise resolved
        else:
            found.update(resolved)
    unique = {s.admin: s for s in found}
    results = await asyncio.gather(*(_clear_one(s.admin, token) for s in sorted(unique.values())))
    return failed + list(results)


def clear_report(results: Sequence[Cleared]) -> dict[str, Any]:
    """The CLI's JSON: every removed id, each sidecar's answer, the unreachable ones."""
    return {
        "removed": [i for r in results for i in r.removed],
        "sidecars": [r.as_dict() for r in results],
        "unreachable": [r.admin for r in results if r.error is not None],
    }
