"""The Toxiproxy-compatible HTTP API (Toxiproxy 2.12) over a TcpLayer.

Routes, status codes, error bodies and JSON shapes are Toxiproxy 2.12's own, so
toxiproxy-python, toxiproxy-node-client, toxiproxy-ruby and the Go client work unchanged.
Like Toxiproxy it has no auth: the server binds it to loopback unless told otherwise.
Deliberate deviations are listed in the README (tcp routes and the Toxiproxy-compatible API).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from faults.errors import BrownoutError, Conflict, InvalidInput, NotFound
from faults.toxics import AttributeDecodeError, is_toxic_type
from proxy.tcp.address import ListenError
from proxy.tcp.api_json import (
    BadBody,
    decode,
    error,
    fields,
    ok,
    proxy_json,
    toxic_json,
)
from proxy.tcp.layer import (
    STREAM_ERROR,
    PopulateError,
    ProxySpec,
    TcpLayer,
    parse_stream,
)

VERSION = "2.12.0"  # the Toxiproxy version this API emulates (Ruby picks PATCH from it)

LAYER: web.AppKey[TcpLayer] = web.AppKey("tcp_layer", TcpLayer)
_PROXY_FIELDS = {"name": str, "upstream": str, "listen": str, "enabled": bool}
_TOXIC_FIELDS = {"name": str, "type": str, "stream": str, "toxicity": float, "attributes": object}
_TOXIC_UPDATE_FIELDS = {"toxicity": float, "attributes": object}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_toxiproxy_app(layer: TcpLayer) -> web.Application:
    app = web.Application(middlewares=[_toxiproxy_middleware])
    app[LAYER] = layer
    r = app.router
    r.add_route("GET", "/proxies", _list_proxies)
    r.add_route("POST", "/proxies", _create_proxy)
    r.add_route("POST", "/populate", _populate)
    r.add_route("GET", "/proxies/{proxy}", _get_proxy)
    r.add_route("POST", "/proxies/{proxy}", _update_proxy)
    r.add_route("PATCH", "/proxies/{proxy}", _update_proxy)
    r.add_route("DELETE", "/proxies/{proxy}", _delete_proxy)
    r.add_route("GET", "/proxies/{proxy}/toxics", _list_toxics)
    r.add_route("POST", "/proxies/{proxy}/toxics", _create_toxic)
    r.add_route("GET", "/proxies/{proxy}/toxics/{toxic}", _get_toxic)
    r.add_route("POST", "/proxies/{proxy}/toxics/{toxic}", _update_toxic)
    r.add_route("PATCH", "/proxies/{proxy}/toxics/{toxic}", _update_toxic)
    r.add_route("DELETE", "/proxies/{proxy}/toxics/{toxic}", _delete_toxic)
    r.add_route("POST", "/reset", _reset)
    r.add_route("GET", "/version", _version)
    return app


def status_of(exc: BrownoutError) -> int:
    if isinstance(exc, ListenError):
        return 500  # Toxiproxy answers bind and resolve failures with 500 and the OS text
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def message_of(exc: BrownoutError) -> str:
    if isinstance(exc, AttributeDecodeError):
        return f"bad request body: {exc.message}"
    return str(exc)  # Toxiproxy's texts; our own range checks also name the attribute


@web.middleware
async def _toxiproxy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    routing = request.match_info.http_exception
    if routing is not None:  # Go's router answers these itself, before any middleware
        if routing.status == 405:
            return web.Response(status=405)
        return web.Response(status=404, body=b"404 page not found\n", headers={
            "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"})
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):  # CSRF / DNS-rebinding guard
        response: web.StreamResponse = web.Response(status=403, body=b"User agent not allowed\n", headers={
            "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"})
    else:
        try:
            response = await handler(request)
        except BadBody as exc:
            response = error(400, f"bad request body: {exc}")
        except BrownoutError as exc:
            response = error(status_of(exc), message_of(exc))
    response.headers["X-Toxiproxy-Request-Id"] = secrets.token_hex(10)
    return response


async def _body(request: web.Request) -> object:
    return decode(await request.text())


# -- proxies

async def _list_proxies(request: web.Request) -> web.Response:
    return ok({p.name: proxy_json(p) for p in request.app[LAYER].proxies()})


async def _create_proxy(request: web.Request) -> web.Response:
    body = fields(await _body(request), "api.Proxy", _PROXY_FIELDS)
    if not body.get("name"):
        return error(400, "missing required field: name")
    if not body.get("upstream"):
        return error(400, "missing required field: upstream")
    proxy = await request.app[LAYER].create_proxy(
        body["name"], body.get("listen", ""), body["upstream"], body.get("enabled", True))
    return ok(proxy_json(proxy), 201)


async def _populate(request: web.Request) -> web.Response:
    raw = await _body(request)
    if not isinstance(raw, list):
        raise BadBody("json: cannot unmarshal object into Go value of type []api.Proxy")
    entries = [fields(item, "api.Proxy", _PROXY_FIELDS) for item in raw]
    for number, entry in enumerate(entries, 1):
        for required in ("name", "upstream"):
            if not entry.get(required):
                return error(400, f"missing required field: {required} at proxy {number}")
    specs = [ProxySpec(e["name"], e["upstream"], e.get("listen", ""), e.get("enabled", True)) for e in entries]
    try:
        proxies = await request.app[LAYER].populate(specs)
    except PopulateError as exc:
        status = status_of(exc.cause)
        return ok({"error": message_of(exc.cause), "status": status,
                   "proxies": [proxy_json(p) for p in exc.proxies]}, status)
    return ok({"proxies": [proxy_json(p) for p in proxies]}, 201)  # [] where Toxiproxy says null


async def _get_proxy(request: web.Request) -> web.Response:
    return ok(proxy_json(request.app[LAYER].get_proxy(request.match_info["proxy"])))


async def _update_proxy(request: web.Request) -> web.Response:
    layer = request.app[LAYER]
    name = request.match_info["proxy"]
    layer.get_proxy(name)
    body = fields(await _body(request), "api.Proxy", _PROXY_FIELDS)
    proxy = await layer.update_proxy(name, listen=body.get("listen"), upstream=body.get("upstream"),
                                     enabled=body.get("enabled"))
    return ok(proxy_json(proxy))


async def _delete_proxy(request: web.Request) -> web.Response:
    await request.app[LAYER].delete_proxy(request.match_info["proxy"])
    return web.Response(status=204)


# -- toxics

async def _list_toxics(request: web.Request) -> web.Response:
    return ok([toxic_json(t) for t in request.app[LAYER].toxics(request.match_info["proxy"])])


async def _create_toxic(request: web.Request) -> web.Response:
    layer = request.app[LAYER]
    name = request.match_info["proxy"]
    layer.get_proxy(name)
    body = fields(await _body(request), "toxics.ToxicWrapper", _TOXIC_FIELDS)
    stream = body.get("stream")
    try:
        parse_stream(stream)
    except InvalidInput:
        return error(400, STREAM_ERROR)
    if not is_toxic_type(body.get("type")):
        return error(400, "invalid toxic type")
    entry = await layer.add_toxic(name, type=body["type"], attributes=body.get("attributes"), stream=stream,
                                  toxicity=body.get("toxicity"), name=body.get("name") or None)
    return ok(toxic_json(entry))  # 200, not 201, as Toxiproxy answers


async def _get_toxic(request: web.Request) -> web.Response:
    entry = request.app[LAYER].get_toxic(request.match_info["proxy"], request.match_info["toxic"])
    return ok(toxic_json(entry))


async def _update_toxic(request: web.Request) -> web.Response:
    layer = request.app[LAYER]
    proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
    layer.get_toxic(proxy, toxic)
    body = fields(await _body(request), "toxics.ToxicWrapper", _TOXIC_UPDATE_FIELDS)
    entry = await layer.update_toxic(proxy, toxic, attributes=body.get("attributes"), toxicity=body.get("toxicity"))
    return ok(toxic_json(entry))


async def _delete_toxic(request: web.Request) -> web.Response:
    await request.app[LAYER].remove_toxic(request.match_info["proxy"], request.match_info["toxic"])
    return web.Response(status=204)


# -- server

async def _reset(request: web.Request) -> web.Response:
    await request.app[LAYER].reset()
    return web.Response(status=204)


async def _version(request: web.Request) -> web.Response:
    body = f'{{"version": "{VERSION}"}}\n'.encode()
    return web.Response(body=body, headers={"Content-Type": "application/json;charset=utf-8"})
