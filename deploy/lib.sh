# shellcheck shell=bash
# Shared by build.sh, deploy.sh, scale.sh, verify.sh, logs.sh and stop.sh
# (sourced, not run). Sets ROOT to the repository and STACK to the stack name.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=${STACK:-flota}
SECRETS_DIR=${SECRETS_DIR:-$ROOT/deploy/secrets}
# Secrets every stack needs; deploy/make-secrets.sh writes them, deploy.sh
# creates them in the swarm as ${STACK}_<name>.
# shellcheck disable=SC2034 # used by the scripts that source this file
STACK_SECRETS=(
  mqtt_master_password
  mqtt_worker_password
  mqtt_observer_password
  worker_token
  api_tokens
  redis_password
  redis_acl
  queue_url
  autoscaler_api_token
)

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

note() {
  echo "$(basename "$0"): $*" >&2
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH"
  done
}

# Exits unless this docker talks to a swarm manager.
need_swarm_manager() {
  need docker
  local control
  control=$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) ||
    die "cannot reach the Docker engine (is dockerd running, may you use it?)"
  [ "$control" = "true" ] ||
    die "this Docker engine is not a swarm manager: run 'docker swarm init' (docs/DEPLOY.md)"
}

# STACK becomes part of service, secret and config names.
check_stack_name() {
  [[ "$STACK" =~ ^[a-z0-9][a-z0-9_-]{0,30}$ ]] ||
    die "STACK must be lower-case letters, digits, '-' or '_' (got '$STACK')"
}
