"""Locust, imported the one way Brownout can live with: without gevent's monkey patching.

``import locust`` patches the whole process for gevent (sockets, threads, time.sleep)
unless ``LOCUST_SKIP_MONKEY_PATCH`` is set. Patched, Brownout's asyncio loop would share one
OS thread with gevent's hub, and a busy uvloop loop never yields to it: heartbeats stop and
workers are declared missing. Unpatched, gevent and asyncio each run on their own native
thread: Locust's runner and its zmq sockets on a gevent hub, Brownout's load on uvloop.

Locust installs a ``SIGWINCH`` handler on import, which Python allows only on the main
thread: import it there (``import_locust``) before starting the thread that runs it.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from faults.errors import InvalidInput

INSTALL_HINT = "the locust engine needs Locust: pip install 'brownout[distributed]'"


@dataclass(frozen=True)
class Locust:
    """What Brownout uses of Locust."""

    version: str
    Environment: Any  # locust.env.Environment
    runners: Any  # the locust.runners module (STATE_MISSING, CONNECT_* settings)


def import_locust() -> Locust:
    """Import Locust unpatched (main thread only); InvalidInput when it is missing or was patched already."""
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # inherited by the worker processes we start too
    already = "locust" in sys.modules
    if not already and threading.current_thread() is not threading.main_thread():
        raise RuntimeError("import Locust on the main thread (it installs a signal handler)")
    try:
        from gevent import monkey
        import locust
        from locust import runners
        from locust.env import Environment
    except ImportError:
        raise InvalidInput(INSTALL_HINT, "engine") from None
    if monkey.is_module_patched("socket") or monkey.is_module_patched("threading"):
        raise InvalidInput("Locust was imported with gevent's monkey patching before Brownout could keep it off; "
                           "set LOCUST_SKIP_MONKEY_PATCH=1", "engine")
    return Locust(locust.__version__, Environment, runners)
