"""Redaction: default headers always, configured headers, JSON paths and patterns everywhere."""

from __future__ import annotations

import base64
import json
import pickle

import pytest

from faults.errors import InvalidInput, InvalidInputs
from proxy.recording import MARKER, Exchange, RawResponse, Redaction, encode

TOKEN = "Bearer sk-live-0123456789"
SECRETS = (TOKEN, "sk-live-0123456789", "sid=s3cr3t", "key-abc123", "proxy-pass", "jane@example.com",
           "4111111111111111", "server-cookie-xyz", "tenant-secret")
CARD = r"\b\d{16}\b"
EMAIL = r"[\w.+-]+@[\w-]+\.[\w.]+"


def _exchange() -> Exchange:
    request = {"customer": {"email": "jane@example.com", "name": "Jane"}, "items": [{"card": "4111111111111111"}, {"card": 4111111111111111}],
               "note": "mail jane@example.com", "amount": 12.5, "ok": True, "none": None}
    answer = {"score": 0.3, "customer": {"email": "jane@example.com"}, "echo": "card 4111111111111111"}
    return Exchange(
        "POST", "/predict?email=jane@example.com&card=4111111111111111",
        [("authorization", TOKEN), ("COOKIE", "sid=s3cr3t"), ("X-Api-Key", "key-abc123"),
         ("Proxy-Authorization", "Basic proxy-pass"), ("X-Tenant", "tenant-secret"), ("X-Trace", "for jane@example.com"),
         ("Content-Type", "application/json")],
        json.dumps(request).encode(), 1.0, (),
        RawResponse(200, [("Content-Type", "application/json"), ("Set-Cookie", "sid=server-cookie-xyz; HttpOnly")],
                    json.dumps(answer).encode(), 1.0),
    )


FULL = Redaction.parse({"headers": ["x-tenant"], "json_paths": ["$.customer.email"], "patterns": [CARD, EMAIL]})


def test_default_headers_never_reach_the_line_whatever_their_case() -> None:
    line = encode(_exchange())
    assert isinstance(line, str)
    for secret in (TOKEN, "sk-live", "sid=s3cr3t", "key-abc123", "proxy-pass", "server-cookie-xyz"):
        assert secret not in line
    doc = json.loads(line)
    assert doc["headers"]["authorization"] == doc["headers"]["COOKIE"] == doc["headers"]["X-Api-Key"] == MARKER
    assert doc["headers"]["Proxy-Authorization"] == MARKER and doc["response"]["headers"]["Set-Cookie"] == MARKER
    assert doc["headers"]["X-Tenant"] == "tenant-secret"  # not redacted unless configured
    assert doc["body"]["customer"]["email"] == "jane@example.com"  # bodies untouched by default


def test_configured_headers_paths_and_patterns_leave_no_secret_anywhere() -> None:
    line = encode(_exchange(), FULL)
    assert isinstance(line, str)
    for secret in SECRETS:
        assert secret not in line, secret
    doc = json.loads(line)
    assert doc["path"] == f"/predict?email={MARKER}&card={MARKER}"
    assert doc["headers"]["X-Tenant"] == MARKER and doc["headers"]["X-Trace"] == f"for {MARKER}"
    body = doc["body"]
    assert body["customer"] == {"email": MARKER, "name": "Jane"}
    assert body["items"] == [{"card": MARKER}, {"card": MARKER}]  # a card sent as a JSON number too
    assert body["note"] == f"mail {MARKER}" and body["amount"] == 12.5 and body["ok"] is True and body["none"] is None
    assert doc["response"]["body"] == {"score": 0.3, "customer": {"email": MARKER}, "echo": f"card {MARKER}"}


def test_json_paths_with_indexes_and_wildcards_replace_whole_values() -> None:
    redaction = Redaction.parse({"json_paths": ["$.items[0].card", "$.users[*].profile", "$.missing.field"]})
    doc = redaction.document({"items": [{"card": "1"}, {"card": "2"}], "users": [{"profile": {"a": 1}}, {"profile": [1]}]})
    assert doc == {"items": [{"card": MARKER}, {"card": "2"}], "users": [{"profile": MARKER}, {"profile": MARKER}]}


def test_patterns_apply_to_non_json_bodies_and_sse_events() -> None:
    raw = "card 4111111111111111 é \xff".encode("utf-8", "surrogateescape")[:-2] + b"\xff\xfe"  # not valid UTF-8
    exchange = Exchange(
        "POST", "/notes", [("Content-Type", "text/plain")], raw, None, (),
        RawResponse(200, [("Content-Type", "text/event-stream")],
                    b'data: {"customer": {"email": "jane@example.com"}, "n": 4111111111111111}\n\ndata: to jane@example.com\n\n'),
    )
    line = encode(exchange, FULL)
    assert isinstance(line, str)
    doc = json.loads(line)
    sent = base64.b64decode(doc["body_base64"])
    assert sent == f"card {MARKER} é ".encode() + b"\xff\xfe"  # bytes that are not UTF-8 survive unchanged
    assert doc["response"]["events"] == [{"data": {"customer": {"email": MARKER}, "n": MARKER}}, {"data": f"to {MARKER}"}]


def test_patterns_with_backreferences_still_apply_one_by_one() -> None:
    redaction = Redaction.parse({"patterns": [r"(\w)\1{3}", r"pin=\d+"]})
    assert redaction.text("aaaa pin=1234 abcd") == f"{MARKER} {MARKER} abcd"


def test_redaction_pickles_for_a_writer_process() -> None:
    again = pickle.loads(pickle.dumps(FULL))
    assert again == FULL
    assert encode(_exchange(), again) == encode(_exchange(), FULL)


@pytest.mark.parametrize(("config", "field", "message"), [
    ({"patterns": ["ok", r"\d{16"]}, "redact.patterns[1]", None),  # valid in Python: a literal brace
    ({"patterns": ["ok", "(unclosed"]}, "redact.patterns[1]", "bad regular expression '(unclosed'"),
    ({"patterns": [r"\d*"]}, "redact.patterns[0]", "matches the empty string"),
    ({"json_paths": ["customer.email"]}, "redact.json_paths[0]", "must start with '$'"),
    ({"json_paths": ["$"]}, "redact.json_paths[0]", "selects the whole body"),
    ({"json_paths": ["$.a[x]"]}, "redact.json_paths[0]", "bad JSON path"),
    ({"headers": ["X Bad"]}, "redact.headers[0]", "not a header name"),
    ({"header": ["X-A"]}, "redact.header", "Extra inputs are not permitted"),
    ({"patterns": "abc"}, "redact.patterns", "tuple"),
])
def test_bad_config_names_the_entry(config: dict, field: str, message: str | None) -> None:
    if message is None:
        Redaction.parse(config)  # accepted
        return
    with pytest.raises(InvalidInput) as err:
        Redaction.parse(config)
    assert err.value.field == field
    assert message in err.value.message


def test_every_bad_entry_is_reported_at_once() -> None:
    with pytest.raises(InvalidInputs) as err:
        Redaction.parse({"patterns": ["(", "[", "ok"], "headers": ["bad name"]})
    assert sorted(e.field or "" for e in err.value.errors) == ["redact.headers[0]", "redact.patterns[0]", "redact.patterns[1]"]
    with pytest.raises(InvalidInput, match="must be an object"):
        Redaction.parse(["Authorization"])  # type: ignore[arg-type]
