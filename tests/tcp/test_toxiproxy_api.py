"""The Toxiproxy-compatible API against Toxiproxy 2.12's own behaviour: routes, status
codes, exact error bodies, JSON shapes, defaults, partial updates, populate and reset."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tests.conftest import free_port
from tests.tcp.helpers import RedisServer, ToxiServer, port_of

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, method: str, path: str, body: object = None, raw: str | None = None,
                 headers: dict[str, str] | None = None) -> requests.Response:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return requests.request(method, self.url + path, data=data, headers=headers, timeout=10)


@pytest.fixture
def api(toxi: ToxiServer) -> Api:
    return Api(toxi.url)


def error_of(resp: requests.Response) -> tuple[int, str]:
    assert resp.headers["Content-Type"] == TEXT
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.text.endswith("\n")
    body = json.loads(resp.text)
    assert body["status"] == resp.status_code
    return resp.status_code, body["error"]


def test_create_get_list_delete_proxy(api: Api, redis_server: RedisServer) -> None:
    resp = api("POST", "/proxies", {"name": "b", "upstream": redis_server.address, "listen": "localhost:0"})
    assert resp.status_code == 201 and resp.headers["Content-Type"].startswith(JSON)
    assert resp.text == json.dumps(resp.json(), separators=(",", ":"))  # compact, no trailing newline
    proxy = resp.json()
    assert list(proxy) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert proxy["listen"].startswith("127.0.0.1:") and port_of(proxy["listen"]) > 0  # hostname → IPv4, real port
    assert proxy["enabled"] is True and proxy["toxics"] == []
    api("POST", "/proxies", {"NAME": "a", "Upstream": "somehost.invalid:1", "enabled": False, "listen": "127.0.0.1:0"})
    listing = api("GET", "/proxies").json()
    assert list(listing) == ["a", "b"]  # keyed by name, sorted
    assert listing["a"]["listen"] == "127.0.0.1:0"  # never started: shown as given
    assert api("GET", "/proxies/b").json() == proxy
    delete = api("DELETE", "/proxies/b")
    assert delete.status_code == 204 and delete.text == "" and "Content-Type" not in delete.headers
    assert error_of(api("GET", "/proxies/b")) == (404, "proxy not found")
    assert "X-Toxiproxy-Request-Id" in delete.headers


def test_create_proxy_errors(api: Api, redis_server: RedisServer) -> None:
    assert error_of(api("POST", "/proxies", raw="")) == (400, "bad request body: EOF")
    assert error_of(api("POST", "/proxies", {"upstream": "x:1"})) == (400, "missing required field: name")
    assert error_of(api("POST", "/proxies", {"name": "x"})) == (400, "missing required field: upstream")
    status, message = error_of(api("POST", "/proxies", {"name": 5, "upstream": "x:1"}))
    assert status == 400 and message.startswith("bad request body: json: cannot unmarshal number")
    body = json.dumps({"name": "t", "upstream": redis_server.address, "listen": "127.0.0.1:0"})
    ok = api("POST", "/proxies", raw=body + "garbage")
    assert ok.status_code == 201  # trailing bytes after the first JSON value are ignored, like Go
    assert error_of(api("POST", "/proxies", {"name": "t", "upstream": "x:1"})) == (409, "proxy already exists")
    taken = ok.json()["listen"]
    status, message = error_of(api("POST", "/proxies", {"name": "u", "upstream": "x:1", "listen": taken}))
    assert (status, message) == (500, f"listen tcp {taken}: bind: address already in use")
    assert error_of(api("POST", "/proxies", {"name": "u", "upstream": "x:1", "listen": "garbage"})) == (
        500, "listen tcp: address garbage: missing port in address")
    assert "u" not in api("GET", "/proxies").json()  # a failed bind registers nothing


def test_router_404_405_and_browser_guard(api: Api) -> None:
    resp = api("GET", "/nope")
    assert (resp.status_code, resp.text, resp.headers["Content-Type"]) == (404, "404 page not found\n", TEXT)
    assert api("GET", "/proxies/").status_code == 404  # no trailing-slash normalisation
    resp = api("PUT", "/proxies")
    assert resp.status_code == 405 and resp.text == "" and resp.headers["Content-Length"] == "0"
    assert "Content-Type" not in resp.headers and "X-Toxiproxy-Request-Id" not in resp.headers
    assert api("HEAD", "/version").status_code == 405
    resp = api("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert (resp.status_code, resp.text) == (403, "User agent not allowed\n")


def test_version(api: Api) -> None:
    resp = api("GET", "/version")
    assert resp.status_code == 200 and resp.text == '{"version": "2.12.0"}\n'
    assert resp.headers["Content-Type"] == "application/json;charset=utf-8"


def test_toxic_lifecycle_defaults_and_partial_update(api: Api, redis_server: RedisServer) -> None:
    api("POST", "/proxies", {"name": "p", "upstream": redis_server.address, "listen": "127.0.0.1:0"})
    resp = api("POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": 100}})
    assert resp.status_code == 200  # 200, not 201
    toxic = resp.json()
    assert list(toxic) == ["attributes", "name", "type", "stream", "toxicity"]
    assert toxic == {"attributes": {"latency": 100, "jitter": 0}, "name": "latency_downstream", "type": "latency",
                     "stream": "downstream", "toxicity": 1}
    assert '"toxicity":1}' in resp.text  # ints as ints
    up = api("POST", "/proxies/p/toxics", {"type": "slicer", "stream": "UPSTREAM", "toxicity": 0.5,
                                           "attributes": {"average_size": 10}}).json()
    assert up["name"] == "slicer_UPSTREAM" and up["stream"] == "UPSTREAM" and up["toxicity"] == 0.5
    assert up["attributes"] == {"average_size": 10, "size_variation": 0, "delay": 0}
    noop = api("POST", "/proxies/p/toxics", {"type": "noop", "name": "n", "stream": None}).json()
    assert noop["attributes"] == {} and noop["stream"] == "downstream"
    # Listed upstream first, then downstream, each in creation order.
    assert [t["name"] for t in api("GET", "/proxies/p/toxics").json()] == ["slicer_UPSTREAM", "latency_downstream", "n"]
    assert [t["name"] for t in api("GET", "/proxies/p").json()["toxics"]] == ["slicer_UPSTREAM", "latency_downstream", "n"]
    patched = api("PATCH", "/proxies/p/toxics/latency_downstream", {"attributes": {"jitter": 5}, "type": "timeout"})
    assert patched.json()["attributes"] == {"latency": 100, "jitter": 5} and patched.json()["type"] == "latency"
    posted = api("POST", "/proxies/p/toxics/latency_downstream", {"toxicity": 0.25}).json()
    assert posted["toxicity"] == 0.25 and posted["attributes"] == {"latency": 100, "jitter": 5}
    assert api("GET", "/proxies/p/toxics/latency_downstream").json() == posted
    assert api("DELETE", "/proxies/p/toxics/latency_downstream").status_code == 204
    assert error_of(api("GET", "/proxies/p/toxics/latency_downstream")) == (404, "toxic not found")


def test_toxic_errors_in_toxiproxy_order(api: Api, redis_server: RedisServer) -> None:
    api("POST", "/proxies", {"name": "p", "upstream": redis_server.address, "listen": "127.0.0.1:0"})
    assert error_of(api("POST", "/proxies/none/toxics", {"type": "latency"})) == (404, "proxy not found")
    assert error_of(api("POST", "/proxies/p/toxics", raw="{")) == (400, "bad request body: unexpected EOF")
    stream_error = "stream was invalid, can be either upstream or downstream"
    assert error_of(api("POST", "/proxies/p/toxics", {"type": "nope", "stream": "sideways"})) == (400, stream_error)
    assert error_of(api("POST", "/proxies/p/toxics", {"type": "latency", "stream": ""})) == (400, stream_error)
    assert error_of(api("POST", "/proxies/p/toxics", {"type": "down"})) == (400, "invalid toxic type")
    assert error_of(api("POST", "/proxies/p/toxics", {})) == (400, "invalid toxic type")
    api("POST", "/proxies/p/toxics", {"type": "latency", "name": "x", "stream": "upstream"})
    assert error_of(api("POST", "/proxies/p/toxics", {"type": "timeout", "name": "x"})) == (409, "toxic already exists")
    status, message = error_of(api("POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": "100"}}))
    assert status == 400 and message.startswith("bad request body: json: cannot unmarshal string")
    status, message = error_of(api("POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": 1.5}}))
    assert status == 400 and "cannot unmarshal number 1.5" in message
    # Deliberate deviations: values that crash Toxiproxy are refused.
    status, message = error_of(api("POST", "/proxies/p/toxics", {"type": "bandwidth", "attributes": {"rate": -1}}))
    assert status == 400 and "rate" in message
    status, message = error_of(api("POST", "/proxies/p/toxics", {"type": "slicer", "attributes": {"average_size": 0}}))
    assert status == 400 and "average_size" in message
    assert error_of(api("PATCH", "/proxies/p/toxics/none", {"toxicity": 1})) == (404, "toxic not found")
    assert error_of(api("DELETE", "/proxies/p/toxics/none")) == (404, "toxic not found")
    assert error_of(api("GET", "/proxies/none/toxics")) == (404, "proxy not found")


def test_numbers_out_of_range_and_deep_json_are_400_not_500(api: Api, redis_server: RedisServer) -> None:
    """Go's decoder has no NaN, refuses a number its field cannot hold and limits nesting:
    each is a 400 here too, never a 500 and never a stored Infinity."""
    api("POST", "/proxies", {"name": "p", "upstream": redis_server.address, "listen": "127.0.0.1:0"})
    for raw in ("[" * 2000 + "]" * 2000, '{"name": ' + "[" * 2000 + "]" * 2000 + "}"):
        assert error_of(api("POST", "/proxies", raw=raw)) == (400, "bad request body: exceeded max depth")
    assert error_of(api("POST", "/populate", raw="[" * 5000))[0] == 400
    for toxicity in ("NaN", "Infinity", "1e400", "-1e39", "9" * 4000):
        raw = '{"type": "latency", "toxicity": ' + toxicity + ', "attributes": {"latency": 1}}'
        status, message = error_of(api("POST", "/proxies/p/toxics", raw=raw))
        assert status == 400 and message.startswith("bad request body: "), (toxicity, message)
    for latency in ("1e400", "9" * 4000, "-" + "9" * 4000):
        raw = '{"type": "latency", "attributes": {"latency": ' + latency + "}}"
        status, message = error_of(api("POST", "/proxies/p/toxics", raw=raw))
        assert status == 400 and "cannot unmarshal number" in message, (latency, message)
    assert api("GET", "/proxies/p/toxics").json() == []
    api("POST", "/proxies/p/toxics", {"type": "latency", "name": "x"})
    status, message = error_of(api("POST", "/proxies/p/toxics/x", raw='{"toxicity": ' + "9" * 4000 + "}"))
    assert status == 400 and "float32" in message
    assert api("GET", "/proxies/p/toxics/x").json()["toxicity"] == 1


def test_proxy_update_by_post_and_patch(api: Api, redis_server: RedisServer) -> None:
    first = api("POST", "/proxies", {"name": "p", "upstream": redis_server.address, "listen": "127.0.0.1:0"}).json()
    port = port_of(first["listen"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    # The same address spelled with a hostname does not restart the proxy.
    same = api("PATCH", "/proxies/p", {"listen": f"localhost:{port}", "name": "ignored"}).json()
    assert same["listen"] == first["listen"] and same["name"] == "p"
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"
    disabled = api("POST", "/proxies/p", {"enabled": False}).json()
    assert disabled["enabled"] is False and disabled["listen"] == first["listen"]
    assert sock.recv(100) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    enabled = api("PATCH", "/proxies/p", {"enabled": True}).json()
    assert enabled["enabled"] is True and enabled["listen"] == first["listen"]
    new_port = free_port()
    moved = api("POST", "/proxies/p", {"listen": f"127.0.0.1:{new_port}"}).json()
    assert moved["listen"] == f"127.0.0.1:{new_port}" and moved["enabled"] is True
    assert error_of(api("PATCH", "/proxies/p", {"listen": "badlisten"})) == (
        500, "address badlisten: missing port in address")
    assert error_of(api("PATCH", "/proxies/nope", {"enabled": True})) == (404, "proxy not found")
    assert error_of(api("PATCH", "/proxies/p", raw="")) == (400, "bad request body: EOF")
    sock.close()


def test_populate(api: Api, redis_server: RedisServer) -> None:
    empty = api("POST", "/populate", [])
    assert empty.status_code == 201 and empty.json() == {"proxies": []}  # [] where Toxiproxy says null
    entry = {"name": "c", "upstream": redis_server.address, "listen": "127.0.0.1:0"}
    created = api("POST", "/populate", [entry]).json()["proxies"][0]
    fixed = {**entry, "listen": created["listen"]}
    api("POST", "/proxies/c/toxics", {"type": "latency"})
    again = api("POST", "/populate", [fixed]).json()["proxies"][0]
    assert again["toxics"] != [] and again["listen"] == created["listen"]  # equal entry: untouched
    replaced = api("POST", "/populate", [{**fixed, "upstream": "127.0.0.1:1"}]).json()["proxies"][0]
    assert replaced["toxics"] == [] and replaced["upstream"] == "127.0.0.1:1"  # different: a new proxy
    assert error_of(api("POST", "/populate", [entry, {"upstream": "x:1"}])) == (
        400, "missing required field: name at proxy 2")
    assert error_of(api("POST", "/populate", {"name": "x"}))[0] == 400
    taken = replaced["listen"]
    failed = api("POST", "/populate", [{"name": "d", "upstream": "x:1", "listen": "127.0.0.1:0"},
                                       {"name": "e", "upstream": "x:1", "listen": taken},
                                       {"name": "f", "upstream": "x:1", "listen": "127.0.0.1:0"}])
    assert failed.status_code == 500 and failed.headers["Content-Type"].startswith(JSON)
    body = failed.json()
    assert body["error"] == f"listen tcp {taken}: bind: address already in use" and body["status"] == 500
    assert [p["name"] for p in body["proxies"]] == ["d"]
    assert set(api("GET", "/proxies").json()) == {"c", "d"}  # stopped at the failure


def test_reset_restarts_and_clears(api: Api, toxi: ToxiServer, redis_server: RedisServer) -> None:
    listen = api("POST", "/proxies", {"name": "p", "upstream": redis_server.address, "listen": "127.0.0.1:0"}).json()["listen"]
    api("POST", "/proxies/p/toxics", {"type": "latency", "attributes": {"latency": 10}})
    api("POST", "/proxies/p", {"enabled": False})
    resp = api("POST", "/reset")
    assert resp.status_code == 204 and resp.text == ""
    assert api("GET", "/proxies/p").json() == {"name": "p", "listen": listen, "upstream": redis_server.address,
                                                "enabled": True, "toxics": []}
    assert len(toxi.resets) == 1
    api("POST", "/proxies", {"name": "g", "upstream": "x:1", "listen": "garbage", "enabled": False})
    assert error_of(api("POST", "/reset")) == (500, "listen tcp: address garbage: missing port in address")
