"""tcp routes: a byte relay per route with Toxiproxy-style toxics, and the
Toxiproxy-compatible API over them."""

from proxy.tcp.address import ListenError
from proxy.tcp.api import make_toxiproxy_app
from proxy.tcp.layer import PopulateError, ProxySpec, TcpLayer
from proxy.tcp.link import ToxicEntry
from proxy.tcp.relay import TcpProxy

__all__ = ["ListenError", "PopulateError", "ProxySpec", "TcpLayer", "TcpProxy", "ToxicEntry", "make_toxiproxy_app"]
