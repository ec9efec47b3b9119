"""The one exception tree of Brownout.

Every layer raises these; they are mapped to HTTP statuses in ``proxy.http_errors``
and to exit codes in ``brownout.exit_codes`` — nowhere else.
"""

from __future__ import annotations


class BrownoutError(Exception):
    """Root of every error Brownout raises on purpose."""


class InvalidInput(BrownoutError):
    """Bad user input: a config or experiment file, an admin API body, a CLI flag.

    ``field`` is the dotted path of the offending value (``method[1].params.delay_ms``);
    ``source``/``line``/``column`` locate it in a file when there is one.
    """

    def __init__(
        self,
        message: str,
        field: str | None = None,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.source = source
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class InvalidInputs(InvalidInput):
    """Several input errors found at once (validation reports all of them)."""

    def __init__(self, errors: list[InvalidInput]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class NotFound(BrownoutError):
    """A named thing (fault, route, proxy) does not exist."""


class Conflict(BrownoutError):
    """The thing already exists, or the request clashes with current state."""


class Unauthorized(BrownoutError):
    """Missing or wrong admin token."""


class Unreachable(BrownoutError):
    """A target, proxy or upstream could not be reached."""


class QueryFailed(BrownoutError):
    """A monitoring system (Prometheus) answered, but not with a result that can be judged: a
    query it rejected, or an answer of the wrong kind (its error text included)."""


class Forbidden(BrownoutError):
    """Refused whoever asks: a cross-site ``Origin``, or a ``Host`` name the admin API does not
    answer to. ``field`` names the header."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnsupportedMediaType(InvalidInput):
    """A body in a media type the endpoint does not read (the admin API reads JSON only)."""
