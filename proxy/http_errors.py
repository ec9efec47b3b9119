"""The one place where Brownout's exceptions become HTTP statuses (admin APIs)."""

from __future__ import annotations

from faults.errors import (
    BrownoutError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidInputs,
    NotFound,
    Unauthorized,
    Unreachable,
    UnsupportedMediaType,
)

_STATUS: tuple[tuple[type[BrownoutError], int], ...] = (  # first match wins: subclasses first
    (UnsupportedMediaType, 415),
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unreachable, 502),
)


def http_status(exc: BrownoutError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: BrownoutError) -> dict[str, object]:
    """``{"error": ..., "field": ...}``; several input errors are listed under ``errors`` too."""
    if isinstance(exc, InvalidInputs) and exc.errors:
        first = exc.errors[0]
        return {
            "error": "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors),
            "field": first.field,
            "errors": [{"error": e.message, "field": e.field} for e in exc.errors],
        }
    if isinstance(exc, (InvalidInput, Forbidden)):
        return {"error": exc.message, "field": exc.field}
    return {"error": str(exc), "field": None}
