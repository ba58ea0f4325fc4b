#!/usr/bin/env bash
# Scales the CPU, GPU or Python workers of a running flota stack, or pauses
# and resumes its autoscaler.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./scale.sh <worker-cpu|worker-gpu|worker-python|autoscaler> <n> [--help]

Sets the number of worker-cpu, worker-gpu or worker-python tasks of stack
\$STACK ("$STACK") and waits until they run, at most DEPLOY_TIMEOUT seconds
(600; 0: no limit). Each worker is named after its task slot (cpu-1, cpu-2,
..., gpu-1, ..., py-1, ...). A worker stopped by a scale-down takes no new
work and finishes what it runs first (SHUTDOWN_GRACE_MS, 20 s in stack.yml).
A new worker enrolls with its service's join token for a credential of its
own id; the master adds its broker login then, so any count works.

The next ./deploy.sh sets the count back to CPU_WORKERS / GPU_WORKERS /
PYTHON_WORKERS (2 / 0 / 0): set those to keep it. ./deploy.sh --autoscale
keeps the running counts of worker-cpu and worker-gpu instead (unless
CPU_WORKERS / GPU_WORKERS are set) and starts the autoscaler, which then
resizes them; it leaves worker-python alone. worker-gpu tasks run only on
nodes labelled gpu=true that advertise a GPU generic resource, one task per
GPU (docs/DEPLOY.md); scale.sh refuses more than those nodes advertise.
worker-python runs the Python worker (workers/python), image
flota-worker-python.

  autoscaler 0|1   pauses or resumes the autoscaler (deploy.sh --autoscale);
                   while it runs, it sets the worker counts itself. The next
                   ./deploy.sh --autoscale starts it again; ./deploy.sh
                   without it stops it.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) usage >&2; die "unknown option '$1'" ;;
esac
[ $# -eq 2 ] || { usage >&2; die "expected a service and a count"; }
service=$1
count=$2
case "$service" in
  worker-cpu | worker-gpu | worker-python | autoscaler) ;;
  *) die "service must be worker-cpu, worker-gpu, worker-python or autoscaler, not '$service'" ;;
esac
[[ "$count" =~ ^[0-9]+$ ]] || die "count must be a whole number, not '$count'"
if [ "$service" = autoscaler ]; then
  # Two autoscalers would fight over the same services.
  [ "$count" -le 1 ] || die "the autoscaler runs once (1) or not at all (0), not $count times"
fi

check_stack_name
check_deploy_timeout
need_swarm_manager
docker service inspect "${STACK}_$service" >/dev/null 2>&1 ||
  die "no service ${STACK}_$service: is the stack deployed (./deploy.sh)?"
# The autoscaler can size worker-cpu and worker-gpu: its Swarm pools know
# workers by the ids cpu-* and gpu-*, so not worker-python's py-*.
if [ "$service" = worker-cpu ] || [ "$service" = worker-gpu ]; then
  autoscaler=$(docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' \
    "${STACK}_autoscaler" 2>/dev/null || echo 0)
  [ "$autoscaler" = 0 ] ||
    note "the autoscaler runs and will resize $service itself: ./scale.sh autoscaler 0 pauses it"
fi

# A GPU worker with no GPU to run on would wait for one for ever.
[ "$service" != worker-gpu ] || [ "$count" -eq 0 ] || need_gpus "$count"

converge_within "${STACK}_$service to run $count task(s)" \
  "docker service ps --no-trunc ${STACK}_$service (why: e.g. no node meets the placement constraints or has a free GPU, no node can pull the image, or a task keeps failing its health check)" \
  docker service scale --detach=false "${STACK}_$service=$count"
