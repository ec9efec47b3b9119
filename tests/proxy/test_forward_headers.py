"""proxy/forward_headers.py on its own: which headers go upstream and which come back."""

from __future__ import annotations

from proxy.forward_headers import response_headers, upstream_request_headers


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name for name, _ in headers]


def test_end_to_end_headers_pass_in_order_and_case_hop_by_hop_do_not() -> None:
    raw = [(b"Accept", b"*/*"), (b"X-Custom", b"1"), (b"Keep-Alive", b"timeout=5"), (b"TE", b"trailers"),
           (b"Proxy-Authorization", b"Basic x"), (b"Upgrade", b"h2c"), (b"x-custom", b"2"), (b"Trailer", b"X")]
    out = upstream_request_headers(raw, "10.0.0.7")
    assert out.headers[:3] == [(b"Accept", b"*/*"), (b"X-Custom", b"1"), (b"x-custom", b"2")]
    assert names(out.headers)[3:] == [b"X-Forwarded-For", b"X-Forwarded-Proto"]
    assert out.upgrade == b"h2c"  # noted, never forwarded


def test_names_listed_in_connection_are_dropped_but_not_plain_tokens() -> None:
    raw = [(b"Connection", b"keep-alive, X-Secret, close"), (b"X-Secret", b"s"), (b"X-Other", b"o"),
           (b"Keep-Alive", b"5")]
    out = upstream_request_headers(raw, "1.2.3.4")
    assert (b"X-Other", b"o") in out.headers
    assert b"X-Secret" not in names(out.headers) and b"Connection" not in names(out.headers)


def test_host_becomes_x_forwarded_host_unless_the_client_set_one() -> None:
    out = upstream_request_headers([(b"Host", b"api.example:8080")], "1.2.3.4")
    assert (b"X-Forwarded-Host", b"api.example:8080") in out.headers and b"Host" not in names(out.headers)
    kept = upstream_request_headers([(b"Host", b"inner"), (b"X-Forwarded-Host", b"outer")], "1.2.3.4")
    assert [v for n, v in kept.headers if n.lower() == b"x-forwarded-host"] == [b"outer"]
    none = upstream_request_headers([], "1.2.3.4")
    assert b"X-Forwarded-Host" not in names(none.headers)


def test_x_forwarded_for_is_appended_to_and_proto_kept() -> None:
    out = upstream_request_headers([(b"X-Forwarded-For", b"1.1.1.1"), (b"x-forwarded-for", b"2.2.2.2"),
                                    (b"X-Forwarded-Proto", b"https")], "3.3.3.3")
    assert [v for n, v in out.headers if n == b"X-Forwarded-For"] == [b"1.1.1.1, 2.2.2.2, 3.3.3.3"]
    assert [v for n, v in out.headers if n.lower() == b"x-forwarded-proto"] == [b"https"]
    fresh = upstream_request_headers([], "::1")
    assert (b"X-Forwarded-For", b"::1") in fresh.headers and (b"X-Forwarded-Proto", b"http") in fresh.headers


def test_framing_and_expect_are_read_not_forwarded() -> None:
    out = upstream_request_headers([(b"Content-Length", b" 42 "), (b"Expect", b"100-Continue")], "1.2.3.4")
    assert out.declared_length == 42 and out.expects_continue and not out.chunked
    assert b"Content-Length" not in names(out.headers) and b"Expect" not in names(out.headers)
    chunked = upstream_request_headers([(b"Transfer-Encoding", b"gzip, Chunked")], "1.2.3.4")
    assert chunked.chunked and chunked.declared_length is None
    assert b"Transfer-Encoding" not in names(chunked.headers)
    bad = upstream_request_headers([(b"Content-Length", b"-1"), (b"Expect", b"something")], "1.2.3.4")
    assert bad.declared_length is None and not bad.expects_continue


def test_response_headers_lose_hop_by_hop_and_report_the_length() -> None:
    kept, length = response_headers([(b"Content-Type", b"text/plain"), (b"Connection", b"keep-alive"),
                                     (b"Keep-Alive", b"timeout=5"), (b"Content-Length", b"12"), (b"X-A", b"1")])
    assert kept == [(b"Content-Type", b"text/plain"), (b"Content-Length", b"12"), (b"X-A", b"1")]
    assert length == 12
    assert response_headers([(b"X-A", b"1")]) == ([(b"X-A", b"1")], None)


def test_a_transfer_coding_other_than_chunked_stays() -> None:
    kept, _ = response_headers([(b"Transfer-Encoding", b"gzip, chunked")])
    assert kept == [(b"Transfer-Encoding", b"gzip")]
    only_chunked, _ = response_headers([(b"Transfer-Encoding", b"chunked")])
    assert only_chunked == []


def test_response_connection_names_are_dropped_but_never_framing() -> None:
    kept, length = response_headers([(b"Connection", b"X-Internal, Content-Length"), (b"X-Internal", b"i"),
                                     (b"Content-Length", b"5"), (b"X-Public", b"p")])
    assert kept == [(b"Content-Length", b"5"), (b"X-Public", b"p")] and length == 5


def test_the_clients_request_id_and_traceparent_are_found_in_the_same_pass_and_still_forwarded() -> None:
    out = upstream_request_headers([(b"Accept", b"*/*"), (b"x-request-id", b"r-1"), (b"X-Request-Id", b"r-2"),
                                    (b"TraceParent", b"00-t1"), (b"traceparent", b"00-t2")], "1.2.3.4")
    assert (out.request_id, out.traceparent) == (b"r-1", b"00-t1")  # the first, as a scan for it would find
    assert [v for n, v in out.headers if n.lower() == b"x-request-id"] == [b"r-1", b"r-2"]
    assert [v for n, v in out.headers if n.lower() == b"traceparent"] == [b"00-t1", b"00-t2"]
    bare = upstream_request_headers([(b"Accept", b"*/*")], "1.2.3.4")
    assert (bare.request_id, bare.traceparent) == (b"", b"")
