"""corrupt: damage a body, JSON-aware (edit values at JSON paths) or as raw bytes."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from faults.base import BodyEdit, Fault, Hook, require
from faults.exchange import Exchange
from faults.json_ops import JsonOp, apply_all, dumps


@dataclass(frozen=True)
class CorruptFault(Fault):
    """Corrupt a body: edit JSON values by path (set/remove/null/NaN/scale/shuffle/…), or flip bytes.

    ``mode``: ``json`` (default) or ``bytes``. ``ops``: a list of ``{op, path, value?, factor?}``,
    applied in order in ``json`` mode:
    ``set`` (to ``value``), ``remove``, ``null``, ``nan``, ``infinity`` (bare ``NaN`` /
    ``Infinity`` tokens, as Python-based servers really emit), ``scale`` (times ``factor``),
    ``shuffle`` (reorder a list), ``change_type`` (number ↔ string, …). Paths use the JSONPath
    subset ``$.a.b[0].c``, with ``[*]`` wildcards. When no op changes anything the body
    passes byte for byte. A body that is not JSON (or ``mode: bytes``) gets ``flips``
    random bytes changed instead. The body is buffered whole, up to ``max_body_bytes``; a
    larger body passes unchanged. In ``json`` mode the body is rewritten (the proxy sends
    it with its new length); ``bytes`` mode keeps the length. ``direction``: ``response`` (default) or ``request`` (the body sent upstream).
    """

    kind = "corrupt"

    ops: tuple[JsonOp, ...] = ()
    mode: Literal["json", "bytes"] = "json"
    flips: int = 1
    max_body_bytes: int = 8 * 1024 * 1024
    direction: Literal["response", "request"] = "response"

    def validate(self) -> None:
        require(self.mode != "json" or bool(self.ops), "ops", "give at least one op (or use mode 'bytes')")
        require(self.mode != "bytes" or not self.ops, "ops", "only apply to mode 'json'")
        require(self.flips >= 1, "flips", f"must be >= 1, got {self.flips}")
        require(self.max_body_bytes >= 1, "max_body_bytes", f"must be >= 1, got {self.max_body_bytes}")

    def corrupt(self, raw: bytes, rng: random.Random) -> bytes:
        """The damaged body (``raw`` itself when nothing applied)."""
        return self.damage(raw, rng)[0]

    def damage(self, raw: bytes, rng: random.Random) -> tuple[bytes, dict[str, int]]:
        """The damaged body and what was done (``ops_applied`` or ``bytes_flipped``)."""
        if not raw:
            return raw, {}
        if self.mode == "json":
            try:
                doc = json.loads(raw)
            except ValueError:  # also UnicodeDecodeError
                return flip_bytes(raw, self.flips, rng), {"bytes_flipped": min(self.flips, len(raw))}
            applied = apply_all(self.ops, doc, rng)
            return (dumps(doc) if applied else raw), {"ops_applied": applied}
        return flip_bytes(raw, self.flips, rng), {"bytes_flipped": min(self.flips, len(raw))}

    def hooks(self) -> frozenset[Hook]:
        return frozenset({Hook.WRAP_REQUEST_BODY if self.direction == "request" else Hook.WRAP_RESPONSE_BODY})

    def _edit(self) -> BodyEdit:
        # A JSON rewrite may change the length; flipped bytes keep it.
        return BodyEdit.REWRITE if self.mode == "json" else BodyEdit.NONE

    def request_edit(self, ex: Exchange) -> BodyEdit:
        return self._edit()

    def response_edit(self, ex: Exchange) -> BodyEdit:
        return self._edit()

    def wrap_request_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return self._rewrite(ex, body) if self.direction == "request" else body

    def wrap_response_body(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return self._rewrite(ex, body) if self.direction == "response" else body

    async def _rewrite(self, ex: Exchange, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        chunks: list[bytes] = []
        size = 0
        too_big = False
        async for chunk in body:
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body_bytes:
                too_big = True
                break
        if too_big:
            # Too large to rewrite safely: what was read, then the rest, untouched.
            ex.report(skipped="over max_body_bytes")
            for chunk in chunks:
                yield chunk
            async for chunk in body:
                yield chunk
            return
        out, done = self.damage(b"".join(chunks), ex.rng)
        ex.report(**done)
        if out:
            yield out


def flip_bytes(raw: bytes, flips: int, rng: random.Random) -> bytes:
    """Change ``flips`` distinct random bytes (XOR with a non-zero mask, so each really changes)."""
    if not raw:
        return raw
    out = bytearray(raw)
    for pos in rng.sample(range(len(out)), min(flips, len(out))):
        out[pos] ^= rng.randrange(1, 256)
    return bytes(out)
