#!/usr/bin/env bash
# Removes a flota stack from the swarm.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./stop.sh [--purge-secrets] [--help]

Removes stack \$STACK ("$STACK"): first the workers (scaled to 0, so each
finishes or hands back its tasks while the master still runs), then the rest:
services, network and configs. Queued tasks stay in Redis.

Kept: the volumes (Redis's queue, Mosquitto's sessions) on the flota.data
node, and the swarm secrets \${STACK}_*, so ./deploy.sh brings the same stack
back with its data. --purge-secrets also removes the secrets that deploy.sh
created (deploy/secrets/ on this machine is left as it is).

It returns once no container of the stack runs on this node (on other
nodes, containers of the stack may still be stopping). Each step waits at
most DEPLOY_TIMEOUT seconds (600; 0: no limit).
USAGE
}

purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --purge-secrets) purge=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

check_stack_name
check_deploy_timeout
need_swarm_manager

# True when the service exists and asks for replicas: scaling one already at 0
# to 0 still waits out its update monitor (about 20 s) for nothing.
has_replicas() {
  local replicas
  replicas=$(docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' "$1" 2>/dev/null) || return 1
  [ "$replicas" != 0 ]
}

if docker stack ls --format '{{.Name}}' | grep -qx "$STACK"; then
  # The autoscaler first: it would bring the workers back up to its minimum.
  if has_replicas "${STACK}_autoscaler"; then
    note "stopping the autoscaler"
    converge_within "the autoscaler to stop" "docker service ps --no-trunc ${STACK}_autoscaler" \
      docker service scale --detach=false "${STACK}_autoscaler=0" >/dev/null
  fi
  # Then the workers, while the master still takes their results: each one
  # finishes or hands back what it runs (SHUTDOWN_GRACE_MS) before it exits.
  workers=()
  for service in worker-cpu worker-gpu worker-python; do
    if has_replicas "${STACK}_$service"; then
      workers+=("${STACK}_$service=0")
    fi
  done
  if [ ${#workers[@]} -gt 0 ]; then
    note "stopping the workers"
    converge_within "the workers to stop" "docker service ps --no-trunc ${STACK}_worker-cpu ${STACK}_worker-gpu ${STACK}_worker-python" \
      docker service scale --detach=false "${workers[@]}" >/dev/null
  fi
  note "removing stack $STACK"
  converge_within "stack $STACK to be removed" "docker stack ps --no-trunc $STACK" \
    docker stack rm --detach=false "$STACK"
  # docker stack rm --detach=false returns once the services are gone, while
  # their last containers (the master, Mosquitto, Redis) may still be within
  # their stop_grace_period: wait until none of the stack's containers runs on
  # this node, so that the volumes are free for a restore or the next deploy.
  running=(docker ps -q --filter "label=com.docker.stack.namespace=$STACK")
  deadline=$((SECONDS + DEPLOY_TIMEOUT))
  while [ -n "$("${running[@]}")" ]; do
    if [ "$DEPLOY_TIMEOUT" != 0 ] && [ "$SECONDS" -ge "$deadline" ]; then
      die "gave up after ${DEPLOY_TIMEOUT}s (DEPLOY_TIMEOUT) waiting for the containers of stack $STACK to stop; see: docker ps --filter label=com.docker.stack.namespace=$STACK"
    fi
    sleep 1
  done
  note "stack $STACK removed"
else
  note "no stack $STACK running"
fi

if [ "$purge" = 1 ]; then
  for name in "${STACK_SECRETS[@]}"; do
    if docker secret inspect "${STACK}_$name" >/dev/null 2>&1; then
      docker secret rm "${STACK}_$name" >/dev/null
      note "removed secret ${STACK}_$name"
    fi
  done
fi
