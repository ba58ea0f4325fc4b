#!/usr/bin/env bash
# Deploys (or updates) the flota stack on Docker Swarm.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./deploy.sh [-c extra.yml]... [--autoscale] [--help]

Deploys stack.yml as stack \$STACK ("$STACK") on the swarm this docker talks
to (run it on a manager):

  1. writes missing secrets into deploy/secrets/ (deploy/make-secrets.sh) and
     creates every missing swarm secret \${STACK}_<name> from them; existing
     swarm secrets are left alone (stop.sh keeps them too);
  2. checks that a node is labelled flota.data=true (Redis and Mosquitto keep
     their volumes there); on a one-node swarm it labels that node;
  3. runs docker stack deploy -c stack.yml [-c extra.yml]... \$STACK and waits
     for the services to converge.

Running it again is an update: changed images roll out one task at a time.

Options:
  -c FILE      an extra compose file merged over stack.yml (repeatable),
               e.g. -c deploy/stack.gemini.yml
  --autoscale  also run the autoscaler, which sizes the worker services from
               the queues (AUTOSCALE_POOLS, docs/DEPLOY.md "Autoscaling");
               a deploy without it stops the autoscaler again
  -h, --help   this text

Environment:
  STACK        stack name (default flota)
  REGISTRY     where build.sh pushed the images (required)
  TAG          image tag (default: ./build.sh --print-tag, this commit's tag)
  CPU_WORKERS, GPU_WORKERS, CPU_SLOTS, GPU_SLOTS, CPU_PROVIDER, CPU_MODELS,
  GPU_MODELS, HTTP_PORT, LOG_LEVEL, DISPATCH_POLICY, AUTOSCALE_POOLS
               see stack.yml
USAGE
}

files=(-c "$ROOT/stack.yml")
AUTOSCALER_REPLICAS=0
while [ $# -gt 0 ]; do
  case "$1" in
    -c)
      [ $# -ge 2 ] || die "-c needs a file"
      [ -r "$2" ] || die "cannot read '$2'"
      files+=(-c "$2")
      shift
      ;;
    --autoscale) AUTOSCALER_REPLICAS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

check_stack_name
[ -n "${REGISTRY:-}" ] || die "set REGISTRY to where build.sh pushed the images"
need_swarm_manager

TAG=${TAG:-$("$ROOT/build.sh" --print-tag)}
export STACK REGISTRY TAG AUTOSCALER_REPLICAS

# 1. Secrets.
missing=()
for name in "${STACK_SECRETS[@]}"; do
  docker secret inspect "${STACK}_$name" >/dev/null 2>&1 || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  SECRETS_DIR="$SECRETS_DIR" "$ROOT/deploy/make-secrets.sh"
  autoscaler_line="autoscaler:$(cat "$SECRETS_DIR/autoscaler_api_token")"
  for name in "${missing[@]}"; do
    labels=(--label "flota.stack=$STACK")
    # Swarm secrets cannot be read back: the label records, for a later
    # --autoscale, that the master's token list knows the autoscaler.
    if [ "$name" = api_tokens ] && grep -qxF "$autoscaler_line" "$SECRETS_DIR/api_tokens"; then
      labels+=(--label flota.autoscaler-token=listed)
    fi
    docker secret create "${labels[@]}" "${STACK}_$name" "$SECRETS_DIR/$name" >/dev/null
    note "created secret ${STACK}_$name"
  done
fi
# With API tokens on, an autoscaler the master does not know gets only 401s.
if [ "$AUTOSCALER_REPLICAS" != 0 ] && [ -n "${API_TOKENS_FILE-on}" ]; then
  listed=$(docker secret inspect --format '{{index .Spec.Labels "flota.autoscaler-token"}}' \
    "${STACK}_api_tokens")
  [ "$listed" = listed ] ||
    die "secret ${STACK}_api_tokens predates the autoscaler and lacks its token: replace it (docs/DEPLOY.md, Autoscaling), then deploy again"
fi

# 2. The node that keeps Redis's and Mosquitto's volumes.
labelled=$(docker node ls -q --filter node.label=flota.data=true | wc -l)
if [ "$labelled" -eq 0 ]; then
  nodes=$(docker node ls -q)
  if [ "$(printf '%s\n' "$nodes" | wc -l)" -eq 1 ]; then
    docker node update --label-add flota.data=true "$nodes" >/dev/null
    note "labelled the only node flota.data=true"
  else
    die "label the node that keeps Redis and Mosquitto data: docker node update --label-add flota.data=true <node>"
  fi
elif [ "$labelled" -gt 1 ]; then
  die "$labelled nodes carry flota.data=true; keep it on one (their volumes are local)"
fi

# 3. Swarm configs are immutable: name each after its content.
content_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -c1-12
  else
    shasum -a 256 "$1" | cut -c1-12
  fi
}
MOSQUITTO_CONF_SHA=$(content_hash "$ROOT/deploy/mosquitto/mosquitto.conf")
MOSQUITTO_ACL_SHA=$(content_hash "$ROOT/deploy/mosquitto/flota.acl")
MOSQUITTO_ENTRYPOINT_SHA=$(content_hash "$ROOT/deploy/mosquitto/entrypoint.sh")
export MOSQUITTO_CONF_SHA MOSQUITTO_ACL_SHA MOSQUITTO_ENTRYPOINT_SHA

# Sets $1 (CPU_WORKERS or GPU_WORKERS), unless already set, to the replicas
# service $2 runs now.
keep_replicas() {
  local current
  [ -z "${!1:-}" ] || return 0
  current=$(docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' \
    "${STACK}_$2" 2>/dev/null) || return 0
  export "$1=$current"
}
# A deploy resets each service to the count in stack.yml; under the
# autoscaler, keep the counts it chose instead.
if [ "$AUTOSCALER_REPLICAS" != 0 ]; then
  keep_replicas CPU_WORKERS worker-cpu
  keep_replicas GPU_WORKERS worker-gpu
fi

note "deploying $REGISTRY/flota-{master,worker}:$TAG as stack $STACK"
[ "$AUTOSCALER_REPLICAS" = 0 ] || note "with the autoscaler (pools ${AUTOSCALE_POOLS:-worker-cpu:cpu:2-8})"
cd "$ROOT"
docker stack deploy --with-registry-auth --detach=false "${files[@]}" "$STACK"
note "done: ./verify.sh checks it end to end"
