#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: system packages (when root and missing), the venv,
# the Python package with its test/demo/report extras, and the Node client used by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v prometheus >/dev/null || missing+=(prometheus)   # PromQL probes and the dashboard are tested against a real one
if [ "${BROWNOUT_WITH_DOCKER:-}" = 1 ]; then
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v busybox >/dev/null || [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)   # base images without a registry
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]})" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q -e '.[test,demo,report]'

# The Node client the tcp tests drive (the tests never install it themselves): installed from
# the lock file whenever npm exists, again only when the lock file is newer than the install.
NODE_DIR=tests/tcp/node
if [ -f "$NODE_DIR/package-lock.json" ] && command -v npm >/dev/null; then
  if [ ! -d "$NODE_DIR/node_modules/toxiproxy-node-client" ] \
     || [ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --silent)
  fi
elif [ -f "$NODE_DIR/package-lock.json" ]; then
  echo "setup: npm is missing, so the Node client for the tcp tests is not installed" >&2
fi
