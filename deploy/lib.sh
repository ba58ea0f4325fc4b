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
  flota_secret
  worker_join_cpu
  worker_join_gpu
  worker_join_python
  tls_ca
  tls_cert
  tls_key
  mqtt_master_password
  mqtt_observer_password
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

# Seconds deploy.sh, scale.sh and stop.sh wait for the swarm to converge
# (0: no limit). Tasks that cannot be placed would otherwise keep them
# waiting for ever.
DEPLOY_TIMEOUT=${DEPLOY_TIMEOUT:-600}

check_deploy_timeout() {
  [[ "$DEPLOY_TIMEOUT" =~ ^[0-9]+$ ]] ||
    die "DEPLOY_TIMEOUT must be a whole number of seconds (0: no limit), not '$DEPLOY_TIMEOUT'"
}

# Runs "$@", a docker command that waits for the swarm to converge, for at
# most $DEPLOY_TIMEOUT seconds. $1 says what it waits for, $2 how to see why
# it takes so long. On expiry it dies; Swarm itself keeps at it.
converge_within() {
  local what=$1 look=$2 timer status=0
  shift 2
  timer=$(command -v timeout || command -v gtimeout || true)
  if [ -z "$timer" ]; then
    note "no timeout(1) on PATH: waiting for $what without a limit"
    "$@"
    return
  fi
  # --foreground keeps docker in the terminal's process group: Ctrl-C reaches it.
  "$timer" --foreground --kill-after=10 "$DEPLOY_TIMEOUT" "$@" || status=$?
  case "$status" in
    # Stopped at the deadline, or killed 10 s later as it did not stop.
    124 | 137)
      die "gave up after ${DEPLOY_TIMEOUT}s (DEPLOY_TIMEOUT) waiting for $what; Swarm keeps at it. See why: $look"
      ;;
  esac
  return "$status"
}

# Prints "<service> <update state> <update start>" for each service of
# stack $1 (state and start empty for a service never updated).
update_states() {
  local ids
  ids=$(docker stack services -q "$1") || return 1
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086 # one service id per word
  docker service inspect --format \
    '{{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}} {{.UpdateStatus.StartedAt}}{{end}}' $ids
}

# True when every service of stack $1 runs all its replicas (a task with a
# health check counts once healthy) and none is updating or rolling back.
# Dies when a service rolled back an update that is not in $2 (the states
# before the deploy, from update_states).
stack_converged() {
  local stack=$1 before=$2 line name state started replicas
  while read -r line; do
    [ -n "$line" ] || continue
    name=${line%% *}
    replicas=${line#* }
    [ "${replicas%%/*}" = "${replicas#*/}" ] || return 1
  done < <(docker stack services "$stack" --format '{{.Name}} {{.Replicas}}' | sed 's/ (.*)$//')
  while read -r name state started; do
    case "$state" in
      updating | rollback_started | paused | rollback_paused) return 1 ;;
      rollback_completed)
        printf '%s\n' "$before" | grep -qxF "$name $state $started" ||
          die "service $name rolled back its update: docker service ps --no-trunc $name shows why (e.g. a task that failed its health check)"
        ;;
    esac
  done < <(update_states "$stack")
  return 0
}

# Waits until stack $1 has converged (stack_converged, three looks in a row
# 2 s apart) for at most DEPLOY_TIMEOUT seconds; $2 is update_states from
# before the deploy. Unlike docker stack deploy --detach=false, which waits
# for the services one after another (each for its update monitor period),
# this waits for all of them at once.
wait_stack_converged() {
  local stack=$1 before=$2 look=$3 deadline=$((SECONDS + DEPLOY_TIMEOUT)) stable=0
  [ -n "$(docker stack services -q "$stack" 2>/dev/null)" ] || return 0
  while [ "$stable" -lt 3 ]; do
    if stack_converged "$stack" "$before"; then
      stable=$((stable + 1))
    else
      stable=0
    fi
    [ "$stable" -ge 3 ] && break
    if [ "$DEPLOY_TIMEOUT" -gt 0 ] && [ "$SECONDS" -ge "$deadline" ]; then
      die "gave up after ${DEPLOY_TIMEOUT}s (DEPLOY_TIMEOUT) waiting for stack $stack to converge; Swarm keeps at it. See why: $look"
    fi
    sleep 2
  done
}

# Exits unless nodes labelled gpu=true advertise at least $1 GPUs (generic
# resource kind GPU, docs/DEPLOY.md): worker-gpu tasks beyond that would
# never be placed.
need_gpus() {
  local want=$1 nodes resources match gpus=0
  nodes=$(docker node ls -q --filter node.label=gpu=true)
  [ -n "$nodes" ] ||
    die "$want worker-gpu task(s) asked for, but no node is labelled gpu=true: label each GPU node (docker node update --label-add gpu=true <node>, docs/DEPLOY.md), or keep worker-gpu at 0"
  # One JSON array per node, e.g. [{"NamedResourceSpec":{"Kind":"GPU","Value":"GPU-…"}}].
  # shellcheck disable=SC2086 # one node id per word
  resources=$(docker node inspect --format '{{json .Description.Resources.GenericResources}}' $nodes)
  while read -r match; do
    case "$match" in
      *NamedResourceSpec*) gpus=$((gpus + 1)) ;;
      *) gpus=$((gpus + ${match##*:})) ;;
    esac
  done < <(grep -oE '"(NamedResourceSpec":\{"Kind":"GPU",|DiscreteResourceSpec":\{"Kind":"GPU","Value":[0-9]+)' \
    <<<"$resources" || true)
  [ "$gpus" -gt 0 ] ||
    die "the nodes labelled gpu=true advertise no GPU to Swarm: add \"node-generic-resources\": [\"GPU=<uuid>\"] to their /etc/docker/daemon.json and restart Docker (docs/DEPLOY.md)"
  [ "$want" -le "$gpus" ] ||
    die "$want worker-gpu task(s) asked for, but the nodes labelled gpu=true advertise $gpus GPU(s), one per task"
}

# STACK becomes part of service, secret and config names.
check_stack_name() {
  [[ "$STACK" =~ ^[a-z0-9][a-z0-9_-]{0,30}$ ]] ||
    die "STACK must be lower-case letters, digits, '-' or '_' (got '$STACK')"
}
