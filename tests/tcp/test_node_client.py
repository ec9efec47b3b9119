"""A second real client: toxiproxy-node-client from npm, run with Node's built-in test runner."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.tcp.helpers import RedisServer, ToxiServer

NODE_DIR = Path(__file__).parent / "node"


def test_toxiproxy_node_client_smoke(toxi: ToxiServer, redis_server: RedisServer) -> None:
    node = shutil.which("node")
    assert node, "node is not installed: run scripts/setup.sh (it installs nodejs and npm)"
    # installed by scripts/setup.sh, never here: a test run does not reach a package registry
    assert (NODE_DIR / "node_modules" / "toxiproxy-node-client").is_dir(), \
        f"toxiproxy-node-client is not installed in {NODE_DIR}: run scripts/setup.sh"
    env = {**os.environ, "TOXIPROXY_URL": toxi.url, "UPSTREAM": redis_server.address}
    result = subprocess.run([node, "--test", "--test-reporter=tap"], cwd=NODE_DIR, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "# pass 1" in output and "# fail 0" in output, output
