#!/usr/bin/env bash
# The stack in containers, as a user runs it, checked end to end (tests/compose/test_compose_up.py).
#
#   deploy/test-compose.sh            # engine, base images, the project's images, then the checks
#   deploy/test-compose.sh prepare    # all but the checks (the test's fixture runs this; idempotent)
#
# On a machine with no container engine (Debian bookworm, root) it installs Debian's docker.io, runc,
# docker-compose 1.29 and debootstrap and starts dockerd. Where no image registry can be reached the base
# images the Dockerfile and docker-compose.yml name are made locally and tagged with those names
# (deploy/standin/: Debian bookworm from `debootstrap --variant=minbase`, trusting this host's CA
# certificates so that package installs inside builds work behind a TLS-re-signing proxy; the certificates
# live only in those local images). Images that exist are kept: the second run builds nothing new.
# Environment: MASKWATCH_DEBIAN_MIRROR (default http://deb.debian.org/debian), DOCKERD_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${MASKWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/maskwatch-dockerd.log}"
STANDIN=deploy/standin
BASE_IMAGE=maskwatch-standin/bookworm:minbase
# image name the project's files use -> stand-in Dockerfile in deploy/standin
declare -A STANDINS=(
  [python:3.11-slim-bookworm]=python.Dockerfile
  [redis:7-alpine]=redis.Dockerfile
  [prom/prometheus:v2.53.0]=prometheus.Dockerfile
  [prom/alertmanager:v0.27.0]=alertmanager.Dockerfile
)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'test-compose: %s\n' "$*" >&2; exit 1; }

apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install $* (or install them yourself)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" >/dev/null
}

ensure_engine() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker >/dev/null 2>&1 || need+=(docker.io)
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    need+=(docker-compose)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_install "${need[@]}"
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    setsid nohup dockerd --storage-driver overlay2 >"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || die "dockerd did not start: $(tail -3 "$DOCKERD_LOG")"
  fi
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Debian bookworm (minbase) trusting this host's CA certificates, imported without a registry.
ensure_base() {
  have_image "$BASE_IMAGE" && return
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  local rootfs
  rootfs="$(mktemp -d /var/tmp/maskwatch-rootfs.XXXXXX)"
  ROOTFS="$rootfs"
  # debootstrap mounts /proc and /sys inside; never delete through a mount left by a failed run
  trap 'umount -R "$ROOTFS/proc" "$ROOTFS/sys" 2>/dev/null; rm -rf --one-file-system "$ROOTFS"' EXIT
  log "debootstrap bookworm into $rootfs ($MIRROR)"
  nice debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" >/dev/null
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
  fi
  # the slim images' apt and dpkg settings (deploy/standin/rootfs), and what they would have left out
  cp -r "$STANDIN/rootfs/." "$rootfs/"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,locale,lintian,linda}/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'LABEL org.maskwatch.standin=debian:bookworm' \
    --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf --one-file-system "$rootfs"
  trap - EXIT
}

ensure_standins() {
  local name
  for name in "${!STANDINS[@]}"; do
    have_image "$name" && continue
    timeout 120 docker pull -q "$name" >/dev/null 2>&1 && continue  # the real one, where a registry answers
    ensure_base
    log "stand-in image $name (${STANDINS[$name]})"
    nice docker build -q -f "$STANDIN/${STANDINS[$name]}" -t "$name" "$STANDIN" >/dev/null
  done
}

compose_command() {  # Compose v2 where present, else docker-compose 1.29
  if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi
}

build_images() {
  log "building the project's images (deploy/Dockerfile)"
  local start=$SECONDS
  # shellcheck disable=SC2046
  nice $(compose_command) build >&2
  log "built in $((SECONDS - start)) s: $(docker image inspect -f '{{.Size}}' maskwatch:latest) bytes"
}

prepare() {
  ensure_engine
  ensure_standins
  build_images
}

case "${1:-all}" in
  prepare) prepare ;;
  all)
    prepare
    py="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
    "$py" -c "import pytest, maskwatch" 2>/dev/null \
      || die "$py cannot import pytest and maskwatch: set PYTHON to the project's environment (.ci/run makes .venv)"
    MASKWATCH_COMPOSE_PREPARED=1 exec "$py" -m pytest -q -p no:cacheprovider tests/compose "${@:2}"
    ;;
  *) die "usage: deploy/test-compose.sh [prepare|all [pytest args]]" ;;
esac
