"""A second real client: toxiproxy-node-client from npm, run with Node's built-in test runner."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.tcp.helpers import RedisServer, ToxiServer

NODE_DIR = Path(__file__).parent / "node"


def test_toxiproxy_node_client_smoke(toxi: ToxiServer, redis_server: RedisServer) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are needed (scripts/setup.sh installs them)"
    if not (NODE_DIR / "node_modules" / "toxiproxy-node-client").is_dir():
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    env = {**os.environ, "TOXIPROXY_URL": toxi.url, "UPSTREAM": redis_server.address}
    result = subprocess.run([node, "--test", "--test-reporter=tap"], cwd=NODE_DIR, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "# pass 1" in output and "# fail 0" in output, output
