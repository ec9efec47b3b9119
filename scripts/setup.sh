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

if [ -f tests/tcp/node/package.json ] && [ ! -d tests/tcp/node/node_modules ] && command -v npm >/dev/null; then
  (cd tests/tcp/node && npm install --no-audit --no-fund --silent)
fi
