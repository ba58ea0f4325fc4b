#!/usr/bin/env bash
# The Swarm deployment on a real Docker engine (npm run test:swarm): starts a
# private dockerd, a one-node swarm and a local registry, makes the base
# images without pulling anything, builds the images with build.sh, deploys
# with deploy.sh, checks the stack with verify.sh and the scenarios of
# tests/swarm/run.ts, removes it with stop.sh, and at the end (also after a
# failure or Ctrl-C) removes every daemon, mount, link and file it made.
# Prints the time of each step and the image sizes. Needs root.
#
# The host's own Redis, Mosquitto and firewall are left alone: the stack's
# services listen only inside their containers, the master's port is a free
# port of 127.0.0.1, and dockerd runs with --iptables=false.
#
# Environment:
#   FLOTA_SWARM_CACHE  where the debootstrap root file systems are kept
#                      between runs (/var/cache/flota-swarm)
#   SWARM_STEPS        only these scenarios of tests/swarm/run.ts
#                      (comma-separated), for working on one
#   SWARM_TMPFS        1 (default): the engine's data in a tmpfs of
#                      SWARM_TMPFS_SIZE (8g; only what is written uses
#                      memory, about 1.5 GB); 0: on disk
#
# After a failure, the services' logs are kept in /var/tmp/flota-swarm-failure.*
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/swarm/engine.sh
source "$ROOT/scripts/swarm/engine.sh"
# shellcheck source=scripts/swarm/base-images.sh
source "$ROOT/scripts/swarm/base-images.sh"

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  '') ;;
  *) swarm_die "unknown argument '$1' (see --help)" ;;
esac

CACHE=${FLOTA_SWARM_CACHE:-/var/cache/flota-swarm}
STEP_TIMES=()
checks_passed=0
STARTED=$SECONDS
step_started=0
step_name=""

step() {
  step_done
  step_name=$1
  step_started=$SECONDS
  swarm_log "== $step_name"
}

step_done() {
  [ -z "$step_name" ] || STEP_TIMES+=("$(printf '%-28s %4d s' "$step_name" $((SECONDS - step_started)))")
  step_name=""
}

summary() {
  local line
  swarm_log "step times:"
  for line in "${STEP_TIMES[@]}"; do echo "  $line" >&2; done
  echo "  $(printf '%-28s %4d s' total $((SECONDS - STARTED)))" >&2
}

SWARM_DIR=""
# After a failure, every service's and container's log, and the engine's,
# are kept here (the rest of the run is removed).
save_failure_logs() {
  local keep service container
  keep=$(mktemp -d /var/tmp/flota-swarm-failure.XXXXXX)
  for service in $(docker service ls --format '{{.Name}}' 2>/dev/null); do
    timeout 20 docker service logs --timestamps --raw "$service" >"$keep/service-$service.log" 2>&1 || true
  done
  for container in $(docker ps -aq 2>/dev/null); do
    timeout 20 docker logs --timestamps "$container" >"$keep/container-$container.log" 2>&1 || true
  done
  docker stack ps --no-trunc "${STACK:-flota}" >"$keep/stack-ps.txt" 2>&1 || true
  cp "$SWARM_DIR"/*.log "$SWARM_DIR"/steps.txt "$keep/" 2>/dev/null || true
  swarm_log "logs of the failed run kept in $keep"
}

finish() {
  local status=$?
  trap - EXIT INT TERM
  step_done
  [ "$status" = 0 ] || swarm_log "failed (exit $status); dockerd's log: $SWARM_DIR/dockerd.log (shown below), removing everything"
  if [ "$status" != 0 ] && [ -n "$SWARM_DIR" ] && [ -r "$SWARM_DIR/dockerd.log" ]; then
    tail -n 15 "$SWARM_DIR/dockerd.log" >&2 || true
  fi
  if [ "$status" != 0 ] && [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    save_failure_logs
  fi
  step_name="cleanup"
  step_started=$SECONDS
  if [ -n "$SWARM_DIR" ]; then
    if engine_cleanup "$SWARM_DIR"; then
      swarm_log "cleanup: no daemon, mount, link or file of this run is left"
    else
      swarm_log "cleanup left something behind (above)"
      [ "$status" != 0 ] || status=1
    fi
  fi
  step_done
  summary
  if [ "$status" = 0 ]; then swarm_log "PASSED"; else swarm_log "FAILED"; fi
  # verify.sh, each scenario, stop.sh: the closing line CI reads.
  echo "swarm: $checks_passed passed, $((status == 0 ? 0 : 1)) failed"
  exit "$status"
}
trap finish EXIT
trap 'swarm_log "interrupted"; exit 130' INT TERM

# --- what it needs -----------------------------------------------------------
step "prerequisites"
[ "$(id -u)" = 0 ] || swarm_die "needs root (it starts its own dockerd)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  swarm_log "installing ${missing[*]}"
  # policy-rc.d keeps the packages from starting the system's dockerd.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    swarm_die "apt-get install ${missing[*]} failed"
fi
# Debian's docker (20.10) builds with the engine's own BuildKit; a newer CLI
# without the buildx plugin cannot. deploy.sh and stop.sh need a CLI of 26.0
# or later (--detach=false).
BUILD_DOCKER=/usr/bin/docker
[ -x "$BUILD_DOCKER" ] || BUILD_DOCKER=$(command -v docker)
deploy_cli_major=$(docker version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
[ "${deploy_cli_major:-0}" -ge 26 ] 2>/dev/null ||
  swarm_die "the docker CLI first on PATH ($(command -v docker)) is older than 26.0: deploy.sh needs 26.0 or later (docs/DEPLOY.md)"
SWARM_DIR=$(mktemp -d /var/tmp/flota-swarm.XXXXXX)
mkdir -p "$SWARM_DIR/bin"
ln -s "$BUILD_DOCKER" "$SWARM_DIR/bin/docker"

# --- engine, swarm, registry -------------------------------------------------
step "engine, swarm, registry"
engine_start "$SWARM_DIR"
swarm_log "dockerd $(docker version --format '{{.Server.Version}}') on $DOCKER_HOST, registry $REGISTRY"
if ! grep -qw ip_vs /proc/modules 2>/dev/null && [ ! -d /proc/net/ip_vs ] && [ ! -e /proc/net/ip_vs ]; then
  swarm_log "no IPVS in this kernel: deploying with deploy/stack.no-ipvs.yml"
fi

step "base images"
base_images "$CACHE" "$SWARM_DIR"

# --- build -------------------------------------------------------------------
step "build (build.sh)"
TAG="swarm-$(date -u +%H%M%S)"
NEXT_TAG="$TAG-next"
export TAG REGISTRY
# The GPU workers' image is built for its size only: nothing here runs it,
# so it is not pushed.
PATH="$SWARM_DIR/bin:$PATH" BUILD_NETWORK=host ROLES="master worker worker-python" "$ROOT/build.sh" >"$SWARM_DIR/build.log" 2>&1 || {
  tail -n 40 "$SWARM_DIR/build.log" >&2
  swarm_die "build.sh failed"
}
step "build worker-gpu (no push)"
PATH="$SWARM_DIR/bin:$PATH" BUILD_NETWORK=host ROLES=worker-gpu "$ROOT/build.sh" --no-push >"$SWARM_DIR/build-gpu.log" 2>&1 || {
  tail -n 40 "$SWARM_DIR/build-gpu.log" >&2
  swarm_die "build.sh (worker-gpu) failed"
}
step "build the next tag"
# The rolling update's image: the same build (cached) with another tag and
# revision label, so a new image.
PATH="$SWARM_DIR/bin:$PATH" BUILD_NETWORK=host ROLES=master TAG=$NEXT_TAG "$ROOT/build.sh" >"$SWARM_DIR/build-next.log" 2>&1 || {
  tail -n 40 "$SWARM_DIR/build-next.log" >&2
  swarm_die "build.sh (next tag) failed"
}
for image in node:20-bookworm-slim debian:bookworm-slim "$REGISTRY/flota-master:$TAG" "$REGISTRY/flota-worker:$TAG" \
  "$REGISTRY/flota-worker-gpu:$TAG" "$REGISTRY/flota-worker-python:$TAG"; do
  size=$(docker image inspect --format '{{.Size}}' "$image")
  swarm_log "image $(printf '%-52s %5d MB' "$image" $((size / 1000000)))"
done

# --- deploy ------------------------------------------------------------------
step "deploy (deploy.sh)"
HTTP_PORT=$(free_port)
export HTTP_PORT
export SECRETS_DIR="$SWARM_DIR/secrets"
export SWARM_DOCKER_SOCKET=$ENGINE_SOCKET
export STACK=flota
export DEPLOY_TIMEOUT=240
export AUTOSCALE_POOLS=worker-cpu:cpu:1-6
"$ROOT/deploy.sh" -c "$ROOT/deploy/stack.no-ipvs.yml" -c "$ROOT/tests/swarm/stack.test.yml" \
  >"$SWARM_DIR/deploy.log" 2>&1 || {
  grep -v 'Waiting [0-9]* seconds' "$SWARM_DIR/deploy.log" | tail -n 30 >&2
  docker stack ps --no-trunc "$STACK" >&2 || true
  swarm_die "deploy.sh failed"
}
restarts=$(docker service ps --format '{{.Name}} {{.Error}}' "${STACK}_master" | grep -c 'exit' || true)
swarm_log "deployed; the master's tasks that exited during the start: $restarts"

step "verify.sh"
"$ROOT/verify.sh" || swarm_die "verify.sh failed"
checks_passed=1

# --- scenarios ---------------------------------------------------------------
step "scenarios (tests/swarm/run.ts)"
export SWARM_WORK=$SWARM_DIR ROOT NEXT_TAG
NODE_EXTRA_CA_CERTS="$SECRETS_DIR/tls_ca" node --import tsx "$ROOT/tests/swarm/run.ts" >"$SWARM_DIR/steps.txt" || {
  swarm_log "docker stack ps:"
  docker stack ps --no-trunc "$STACK" 2>&1 | head -n 30 >&2 || true
  swarm_die "a scenario failed (above)"
}
while read -r _ name seconds; do
  STEP_TIMES+=("$(printf '  %-26s %4.0f s' "$name" "$seconds")")
  checks_passed=$((checks_passed + 1))
done <"$SWARM_DIR/steps.txt"

# --- stop --------------------------------------------------------------------
step "stop.sh"
"$ROOT/stop.sh" || swarm_die "stop.sh failed"
! docker stack ls --format '{{.Name}}' | grep -qx "$STACK" || swarm_die "stack $STACK still listed after stop.sh"
left=$(docker ps -q | wc -l)
[ "$left" -eq 0 ] || swarm_die "$left container(s) still run after stop.sh"
swarm_log "ok: stop.sh removed the stack, no container runs"
checks_passed=$((checks_passed + 1))
step_done
