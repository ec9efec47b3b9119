"""The one adapter over toxiproxy-python, for experiments that drive an EXTERNAL Toxiproxy
server (Brownout's own routes are driven through the native admin API and its leases).

It fixes the client's known gaps:

* per-server host and port: toxiproxy-python keeps them in ``APIConsumer`` class
  attributes shared by the whole process; each adapter uses its own ``APIConsumer``
  subclass, so two servers can be driven at once;
* request timeouts: every call passes ``timeout`` (the client sets none: a hung server
  hangs the caller);
* errors raised, as ``faults.errors`` classes: 400 → InvalidInput, 404 → NotFound,
  409 → Conflict, any other failure status (403, 405, 500 — which the client lets pass
  as success) and transport errors → Unreachable; a proxy that did not really change
  state (``enable()`` on a taken port) is an error too;
* toxics it adds are remembered, so ``remove_all_added()`` can clean up unconditionally;
  and it can update a toxic (the client cannot).

Calls are blocking ``requests`` calls underneath; the async methods run them in a thread so
the runner's event loop keeps going.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, ProxyExists
from toxiproxy.exceptions import NotFound as ToxiproxyNotFound

from faults.errors import BrownoutError, Conflict, InvalidInput, NotFound, Unreachable

T = TypeVar("T")


class ToxiproxyAdapter:
    def __init__(self, host: str = "127.0.0.1", port: int = 8474, *, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        # A private APIConsumer: the client's class-level host/port, but per server.
        self._api: type[APIConsumer] = type("APIConsumer", (APIConsumer,), {"host": host, "port": port})
        self._added: list[tuple[str, str]] = []  # (proxy, toxic) in the order they were added
        self._disabled: list[str] = []

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> ToxiproxyAdapter:
        """``http://host:8474`` → an adapter for that server."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname:
            raise InvalidInput(f"not a Toxiproxy URL: {url!r}", "url")
        return cls(parts.hostname, parts.port or 8474, timeout=timeout)

    def __repr__(self) -> str:
        return f"ToxiproxyAdapter({self.host}:{self.port})"

    # -- the calls

    async def version(self) -> str:
        """The server's version string (toxiproxy-python returns raw bytes)."""
        text = await self._call("get", "/version", raw=True)
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return str(text).strip()  # Toxiproxy <= 2.5 answers plain text

    async def proxies(self) -> dict[str, dict[str, Any]]:
        return await self._call("get", "/proxies")

    async def proxy(self, name: str) -> dict[str, Any]:
        return await self._call("get", f"/proxies/{quote(name, safe='')}")

    async def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        attributes: Mapping[str, Any] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Add a toxic and remember it for ``remove_all_added``; returns the toxic as shown."""
        body = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": dict(attributes or {}),
                "name": name or f"{type}_{stream}"}
        toxic = await self._call("post", f"/proxies/{quote(proxy, safe='')}/toxics", body)
        self._added.append((proxy, toxic.get("name", body["name"])))
        return toxic

    async def update_toxic(self, proxy: str, name: str, *, attributes: Mapping[str, Any] | None = None,
                           toxicity: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return await self._call("post", f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}", body)

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call("delete", f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}")
        if (proxy, name) in self._added:
            self._added.remove((proxy, name))

    async def set_enabled(self, proxy: str, enabled: bool) -> dict[str, Any]:
        """Enable or disable (``down``) a proxy, checking that the server really did it."""
        shown = await self._call("post", f"/proxies/{quote(proxy, safe='')}", {"enabled": enabled})
        if shown.get("enabled") is not enabled:
            raise Unreachable(f"{self}: proxy {proxy!r} is still {'disabled' if enabled else 'enabled'}")
        if not enabled and proxy not in self._disabled:
            self._disabled.append(proxy)
        elif enabled and proxy in self._disabled:
            self._disabled.remove(proxy)
        return shown

    async def remove_all_added(self) -> None:
        """Cleanup: remove every toxic this adapter added and re-enable every proxy it
        disabled, newest first. Tries all of them; already gone is fine; raises Unreachable
        naming what could not be undone."""
        failures: list[str] = []
        for proxy, name in reversed(list(self._added)):
            try:
                await self.remove_toxic(proxy, name)
            except NotFound:
                self._added.remove((proxy, name))
            except BrownoutError as exc:
                failures.append(f"toxic {proxy}/{name}: {exc}")
        for proxy in reversed(list(self._disabled)):
            try:
                await self.set_enabled(proxy, True)
            except NotFound:
                self._disabled.remove(proxy)
            except BrownoutError as exc:
                failures.append(f"proxy {proxy}: {exc}")
        if failures:
            raise Unreachable(f"{self}: cleanup incomplete: " + "; ".join(failures))

    # -- plumbing

    async def _call(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        return await asyncio.to_thread(self._request, method, path, body, raw)

    def _request(self, method: str, path: str, body: Any, raw: bool) -> Any:
        send: Callable[..., requests.Response] = getattr(self._api, method)
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if body is not None:
            kwargs["json"] = body
        try:
            response = send(path, **kwargs)
        except InvalidToxic as exc:
            raise InvalidInput(f"{self}: {method.upper()} {path}: {_error_text(exc)}") from None
        except ToxiproxyNotFound as exc:
            raise NotFound(f"{self}: {method.upper()} {path}: {_error_text(exc)}") from None
        except ProxyExists as exc:
            raise Conflict(f"{self}: {method.upper()} {path}: {_error_text(exc)}") from None
        except requests.RequestException as exc:
            raise Unreachable(f"{self} unreachable: {exc.__class__.__name__}: {exc}") from None
        if response.status_code >= 400:  # toxiproxy-python lets these through as success
            raise Unreachable(f"{self}: {method.upper()} {path}: HTTP {response.status_code}: "
                              f"{_error_text(response.content)}")
        if raw:
            return response.text
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Unreachable(f"{self}: {method.upper()} {path} answered non-JSON") from None


def _error_text(source: Any) -> str:
    """Toxiproxy's ``{"error": ...}`` message from an exception or a body, else the raw text."""
    content = source.args[0] if isinstance(source, Exception) and source.args else source
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        return str(json.loads(content)["error"])
    except (ValueError, KeyError, TypeError):
        return str(content).strip()
