#!/usr/bin/env bash
# Deploys (or updates) the flota stack on Docker Swarm.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./deploy.sh [-c extra.yml]... [--autoscale] [--no-tls] [--skip-image-check] [--help]

Deploys stack.yml as stack \$STACK ("$STACK") on the swarm this docker talks
to (run it on a manager):

  1. checks that the registry has the images of TAG (docker manifest
     inspect; flota-worker-gpu and flota-worker-python only when
     GPU_WORKERS or PYTHON_WORKERS is above 0): a tag build.sh never pushed
     would leave every task pulling;
  2. writes missing secrets into deploy/secrets/ (deploy/make-secrets.sh:
     passwords, the secret that signs worker credentials, the workers' join
     tokens, a CA and the master's certificate) and creates every missing
     swarm secret \${STACK}_<name> from them; existing swarm secrets are left
     alone (stop.sh keeps them too), and the join tokens must have been
     signed with the swarm's flota_secret;
  3. checks that a node is labelled flota.data=true (Redis and Mosquitto keep
     their volumes there); on a one-node swarm it labels that node; with
     GPU_WORKERS above 0, that gpu=true nodes advertise enough GPUs;
  4. runs docker stack deploy -c stack.yml [-c extra.yml]... \$STACK and waits
     for all the services to converge at once (every replica running, and
     healthy where it has a health check; no update in progress; a rolled
     back update fails the deploy), at most DEPLOY_TIMEOUT seconds.

Running it again is an update: changed images roll out one task at a time.

Options:
  -c FILE      an extra compose file merged over stack.yml (repeatable),
               e.g. -c deploy/stack.gemini.yml
  --autoscale  also run the autoscaler, which sizes the worker services from
               the queues (AUTOSCALE_POOLS, docs/DEPLOY.md "Autoscaling");
               a deploy without it stops the autoscaler again
  --no-tls     the master's HTTP and gRPC without TLS (-c
               deploy/stack.no-tls.yml), e.g. behind a TLS-terminating proxy
  --skip-image-check
               do not ask the registry for the images first (a registry this
               machine cannot reach, or one only the nodes can)
  -h, --help   this text

Environment:
  STACK        stack name (default flota)
  REGISTRY     where build.sh pushed the images (required)
  TAG          image tag (default: ./build.sh --print-tag, this checkout's tag)
  DEPLOY_TIMEOUT
               seconds to wait for the services to converge (600; 0: no limit)
  CPU_WORKERS, GPU_WORKERS, PYTHON_WORKERS, CPU_SLOTS, GPU_SLOTS,
  PYTHON_SLOTS, CPU_PROVIDER, CPU_MODELS, GPU_MODELS, GPU_OPENAI_BASE_URL,
  PYTHON_PROVIDER, PYTHON_MODELS, PYTHON_OPENAI_BASE_URL, HTTP_PORT,
  LOG_LEVEL, DISPATCH_POLICY, AUTOSCALE_POOLS
               see stack.yml
USAGE
}

files=(-c "$ROOT/stack.yml")
AUTOSCALER_REPLICAS=0
check_images=1
while [ $# -gt 0 ]; do
  case "$1" in
    -c)
      [ $# -ge 2 ] || die "-c needs a file"
      [ -r "$2" ] || die "cannot read '$2'"
      # Absolute: docker stack deploy runs from $ROOT (below).
      case "$2" in
        /*) files+=(-c "$2") ;;
        *) files+=(-c "$PWD/$2") ;;
      esac
      shift
      ;;
    --autoscale) AUTOSCALER_REPLICAS=1 ;;
    --no-tls)
      files+=(-c "$ROOT/deploy/stack.no-tls.yml")
      tls_note=" (with --url http://127.0.0.1:\${HTTP_PORT:-8080}: TLS is off)"
      ;;
    --skip-image-check) check_images=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

check_stack_name
check_deploy_timeout
[ -n "${REGISTRY:-}" ] || die "set REGISTRY to where build.sh pushed the images"
for count in GPU_WORKERS PYTHON_WORKERS; do
  [[ "${!count:-0}" =~ ^[0-9]+$ ]] || die "$count must be a whole number, not '${!count}'"
done
need_swarm_manager
need openssl

REGISTRY=${REGISTRY%/}
TAG=${TAG:-$("$ROOT/build.sh" --print-tag)}
export STACK REGISTRY TAG AUTOSCALER_REPLICAS

# 1. The images, before anything changes: every node pulls them from the
# registry, and a tag it lacks would leave every task stuck pulling.
if [ "$check_images" = 1 ]; then
  manifest=(manifest inspect)
  # A registry on this machine is plain HTTP (docs/DEPLOY.md, "A registry").
  case "$REGISTRY" in
    localhost | localhost[:/]* | 127.*) manifest+=(--insecure) ;;
  esac
  roles=(master worker)
  # GPU and Python workers run images of their own (build.sh builds them
  # unless ROLES leaves them out), needed once those services have replicas.
  [ "${GPU_WORKERS:-0}" -eq 0 ] || roles+=(worker-gpu)
  [ "${PYTHON_WORKERS:-0}" -eq 0 ] || roles+=(worker-python)
  for role in "${roles[@]}"; do
    image="$REGISTRY/flota-$role:$TAG"
    if ! answer=$(docker "${manifest[@]}" "$image" 2>&1 >/dev/null); then
      die "cannot find $image in the registry (docker manifest inspect: ${answer:-no answer}): build and push it with REGISTRY=$REGISTRY ./build.sh, or set TAG to a tag build.sh pushed. --skip-image-check deploys without asking the registry."
    fi
  done
fi

# 2. Secrets.
missing=()
for name in "${STACK_SECRETS[@]}"; do
  docker secret inspect "${STACK}_$name" >/dev/null 2>&1 || missing+=("$name")
done
# Swarm secrets cannot be read back: labels record what later deploys check.
fingerprint() {
  # Names a flota_secret without giving it away.
  printf '%s' "$(cat "$1")" | openssl dgst -sha256 -r | cut -c1-16
}
if [ ${#missing[@]} -gt 0 ]; then
  SECRETS_DIR="$SECRETS_DIR" "$ROOT/deploy/make-secrets.sh"
  autoscaler_token=$(cat "$SECRETS_DIR/autoscaler_api_token")
  signer=$(fingerprint "$SECRETS_DIR/flota_secret")
  for name in "${missing[@]}"; do
    labels=(--label "flota.stack=$STACK")
    case "$name" in
      # For a later --autoscale: the master's token list knows the autoscaler.
      api_tokens)
        if grep -qE "^autoscaler:$autoscaler_token(:admin)?\$" "$SECRETS_DIR/api_tokens"; then
          labels+=(--label flota.autoscaler-token=listed)
        fi
        ;;
      flota_secret) labels+=(--label "flota.fingerprint=$signer") ;;
      worker_join_*) labels+=(--label "flota.signed-by=$signer") ;;
    esac
    docker secret create "${labels[@]}" "${STACK}_$name" "$SECRETS_DIR/$name" >/dev/null
    note "created secret ${STACK}_$name"
  done
fi
# A join token signed with another flota_secret (made on another machine, or
# before the secret was replaced) would get every worker refused at enrollment.
secret_label() {
  docker secret inspect --format "{{index .Spec.Labels \"$2\"}}" "${STACK}_$1"
}
signer=$(secret_label flota_secret flota.fingerprint)
if [ -n "$signer" ]; then
  for name in worker_join_cpu worker_join_gpu worker_join_python; do
    signed_by=$(secret_label "$name" flota.signed-by)
    [ -z "$signed_by" ] || [ "$signed_by" = "$signer" ] ||
      die "secret ${STACK}_$name was signed with another flota_secret than ${STACK}_flota_secret: replace it with a join token of this installation (docs/DEPLOY.md, Credentials), then deploy again"
  done
fi
# With API tokens on, an autoscaler the master does not know gets only 401s.
if [ "$AUTOSCALER_REPLICAS" != 0 ] && [ -n "${API_TOKENS_FILE-on}" ]; then
  listed=$(secret_label api_tokens flota.autoscaler-token)
  [ "$listed" = listed ] ||
    die "secret ${STACK}_api_tokens predates the autoscaler and lacks its token: replace it (docs/DEPLOY.md, Autoscaling), then deploy again"
fi

# 3. The node that keeps Redis's and Mosquitto's volumes.
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

# 4. Swarm configs are immutable: name each after its content.
content_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -c1-12
  else
    shasum -a 256 "$1" | cut -c1-12
  fi
}
MOSQUITTO_CONF_SHA=$(content_hash "$ROOT/deploy/mosquitto/mosquitto.conf")
MOSQUITTO_ENTRYPOINT_SHA=$(content_hash "$ROOT/deploy/mosquitto/entrypoint.sh")
export MOSQUITTO_CONF_SHA MOSQUITTO_ENTRYPOINT_SHA

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
# GPU workers without GPUs to run on would keep the deploy waiting.
[ "${GPU_WORKERS:-0}" -eq 0 ] || need_gpus "$GPU_WORKERS"

note "deploying $REGISTRY/flota-{master,worker}:$TAG as stack $STACK"
[ "$AUTOSCALER_REPLICAS" = 0 ] || note "with the autoscaler (pools ${AUTOSCALE_POOLS:-worker-cpu:cpu:2-8})"
cd "$ROOT"
look="docker stack services $STACK (which service lags), docker service ps --no-trunc ${STACK}_<service> (why: e.g. no node meets the placement constraints or has a free GPU, no node can pull the image, or a task keeps failing its health check)"
before=$(update_states "$STACK" 2>/dev/null || true)
# Detached, then one wait for every service at once (see wait_stack_converged).
converge_within "stack $STACK to converge" "$look" \
  docker stack deploy --with-registry-auth --detach=true "${files[@]}" "$STACK"
wait_stack_converged "$STACK" "$before" "$look"
note "done: ./verify.sh checks it end to end${tls_note:-}"
