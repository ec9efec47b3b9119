"""Writing a JSONL file all or nothing: a private temporary file renamed into place on success."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from faults.errors import InvalidInput


@contextlib.contextmanager
def atomic_text(out: Path, field: str = "--out") -> Iterator[TextIO]:
    """Yield a file that becomes ``out`` (mode 0600) only if the block ends without an error.

    A corpus may hold what redaction missed, so it is created readable by its owner only.
    """
    directory = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{out.name}.", suffix=".part")  # mode 0600
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}", field) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
