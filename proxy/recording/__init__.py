"""Recorded exchanges: the line format, redaction and encoding shared by the proxy and the control plane.

This package sits in the proxy layer and imports nothing from ``brownout``, so the recorder
in the proxy and ``brownout corpus`` write and read the very same lines.
"""

from proxy.recording.encode import Exchange, RawResponse, Skip, encode, record
from proxy.recording.line import BinaryBody, Event, RecordedResponse, RecordLine, parse_line, read_lines
from proxy.recording.redact import ALWAYS_REDACTED, MARKER, Redaction

__all__ = [
    "ALWAYS_REDACTED", "MARKER", "BinaryBody", "Event", "Exchange", "RawResponse", "RecordLine", "RecordedResponse",
    "Redaction", "Skip", "encode", "parse_line", "read_lines", "record",
]
