"""``brownout corpus import``: a HAR or GoReplay file to recording lines, redacted, all or nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from brownout.corpus.gor import read_gor
from brownout.corpus.har import read_har
from brownout.corpus.output import atomic_text
from faults.errors import InvalidInput
from proxy.recording import Exchange, Redaction, Skip, encode

FORMATS = ("har", "gor")


@dataclass(frozen=True)
class ImportResult:
    written: int
    with_response: int
    skipped: Counter[str] = field(default_factory=Counter)  # Skip reason -> exchanges not written
    notes: Counter[str] = field(default_factory=Counter)  # what the reader left out, and why


def detect_format(path: Path) -> str:
    """By extension (``.har``; ``.gor``, ``.gor.gz``), else by the first bytes."""
    name = path.name.lower()
    if name.endswith(".har"):
        return "har"
    if name.endswith((".gor", ".gor.gz")):
        return "gor"
    try:
        with path.open("rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    if head.startswith(b"{"):
        return "har"
    if head[:2] in (b"1 ", b"2 ", b"3 "):
        return "gor"
    raise InvalidInput(f"cannot tell the format of {path}; pass --format har or gor", "--format")


def import_file(
    path: Path, out: Path, *, fmt: str | None = None, redaction: Redaction | None = None, max_body: int | None = None,
) -> ImportResult:
    """Read ``path``, write one redacted recording line per exchange to ``out``.

    Nothing is written unless the whole file reads cleanly (a malformed entry raises
    ``InvalidInput`` naming it) and at least one exchange is kept.
    """
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}", "--format")
    redaction = redaction or Redaction()
    notes: Counter[str] = Counter()
    exchanges: Iterable[Exchange] = read_har(path) if fmt == "har" else read_gor(path, notes)
    skipped: Counter[str] = Counter()
    written = with_response = 0
    with atomic_text(out) as handle:
        for exchange in exchanges:
            line = encode(exchange, redaction, max_body)
            if isinstance(line, Skip):
                skipped[line.value] += 1
                continue
            handle.write(line + "\n")
            written += 1
            with_response += exchange.response is not None
        if not written:
            raise InvalidInput(f"no exchange to write (skipped: {dict(skipped) or 'none'})", source=str(path))
    return ImportResult(written, with_response, skipped, notes)
