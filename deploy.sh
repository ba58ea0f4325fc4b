#!/usr/bin/env bash
# Deploys (or updates) the flota stack on Docker Swarm.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./deploy.sh [-c extra.yml]... [--help]

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
  -h, --help   this text

Environment:
  STACK        stack name (default flota)
  REGISTRY     where build.sh pushed the images (required)
  TAG          image tag (default: ./build.sh --print-tag, this commit's tag)
  CPU_WORKERS, GPU_WORKERS, CPU_SLOTS, GPU_SLOTS, CPU_PROVIDER, CPU_MODELS,
  GPU_MODELS, HTTP_PORT, LOG_LEVEL, DISPATCH_POLICY   see stack.yml
USAGE
}

files=(-c "$ROOT/stack.yml")
while [ $# -gt 0 ]; do
  case "$1" in
    -c)
      [ $# -ge 2 ] || die "-c needs a file"
      [ -r "$2" ] || die "cannot read '$2'"
      files+=(-c "$2")
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

check_stack_name
[ -n "${REGISTRY:-}" ] || die "set REGISTRY to where build.sh pushed the images"
need_swarm_manager

TAG=${TAG:-$("$ROOT/build.sh" --print-tag)}
export STACK REGISTRY TAG

# 1. Secrets.
missing=()
for name in "${STACK_SECRETS[@]}"; do
  docker secret inspect "${STACK}_$name" >/dev/null 2>&1 || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  SECRETS_DIR="$SECRETS_DIR" "$ROOT/deploy/make-secrets.sh"
  for name in "${missing[@]}"; do
    docker secret create --label "flota.stack=$STACK" \
      "${STACK}_$name" "$SECRETS_DIR/$name" >/dev/null
    note "created secret ${STACK}_$name"
  done
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

note "deploying $REGISTRY/flota-{master,worker}:$TAG as stack $STACK"
cd "$ROOT"
docker stack deploy --with-registry-auth --detach=false "${files[@]}" "$STACK"
note "done: ./verify.sh checks it end to end"
