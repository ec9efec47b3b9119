#!/usr/bin/env bash
# Container base images made from Debian packages alone, for machines that reach no container
# registry (CI): debootstrap a minimal bookworm on the host, then `docker import` it.
#
#   brownout-base:bookworm      python3 + venv            BASE of the Brownout image in CI
#   brownout-services:bookworm  redis-server, prometheus   redis and prometheus in docker-compose.ci.yml
#
# Run as root (debootstrap needs it). An image that already exists is kept (FORCE=1 rebuilds);
# downloaded packages are cached in $DEBOOTSTRAP_CACHE for the next run on this machine.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-brownout-base:bookworm}
SERVICES_IMAGE=${SERVICES_IMAGE:-brownout-services:bookworm}
DEBOOTSTRAP_CACHE=${DEBOOTSTRAP_CACHE:-/var/cache/brownout/debootstrap}
SUITE=bookworm

# The machine's own Debian mirror (deb822 or one-line sources), else deb.debian.org.
mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

# build IMAGE PACKAGES [SETUP]: debootstrap with PACKAGES, run SETUP inside the tree, import it.
build() {
  local image=$1 packages=$2 setup=${3:-} root started
  if [ "${FORCE:-}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "base-images: $image exists, kept ($(size "$image"); FORCE=1 rebuilds)"
    return
  fi
  started=$SECONDS
  root=$(mktemp -d /var/tmp/brownout-rootfs.XXXXXX)
  mkdir -p "$DEBOOTSTRAP_CACHE"
  if ! debootstrap --variant=minbase --include="$packages" --cache-dir="$DEBOOTSTRAP_CACHE" \
       "$SUITE" "$root" "$(mirror)" >"$root.log" 2>&1; then
    tail -30 "$root.log" >&2
    rm -rf "$root" "$root.log"
    return 1
  fi
  rm -f "$root.log"
  echo "base-images: debootstrap $image: $((SECONDS - started))s"
  [ -z "$setup" ] || chroot "$root" /bin/sh -euc "$setup"
  # Nothing a container needs: package caches and lists, docs, man pages, locales.
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
         "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
  started=$SECONDS
  tar -C "$root" --numeric-owner -c . \
    | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
  rm -rf "$root"
  echo "base-images: docker import $image: $((SECONDS - started))s, $(size "$image")"
}

size() {
  docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'
}

build "$BASE_IMAGE" python3,python3-venv
# Debian's prometheus runs as its own user; /prometheus is its data volume (owned, so a
# fresh named volume inherits the ownership).
build "$SERVICES_IMAGE" redis-server,prometheus,wget \
  'mkdir -p /prometheus && chown prometheus:prometheus /prometheus'
