#!/usr/bin/env bash
# Checks a running flota stack end to end: services, readiness, one task.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./verify.sh [--url URL] [--model MODEL] [--timeout SECONDS] [--no-services] [--help]

  1. every service of stack \$STACK ("$STACK") runs all its replicas
     (skipped with --no-services, e.g. for docker compose);
  2. GET /readyz answers 200 (store, broker and gRPC ready);
  3. GET /api/workers lists an online worker;
  4. one task round-trip: POST /api/tasks, then GET /api/tasks/<id> until it
     completes (with model echo the answer must be "echo: <prompt>").

Options:
  --url URL          the master (default https://127.0.0.1:\${HTTP_PORT:-8080};
                     http://... for a stack deployed with --no-tls)
  --model MODEL      model of the test task (default echo)
  --timeout SECONDS  for each step (default 60)
  --no-services      skip step 1 (no swarm needed)

The API token (the master's API_TOKENS) is \$FLOTA_API_TOKEN, else the first
token in deploy/secrets/api_tokens; none is sent when neither exists. It goes
to curl through a private config file, never on a command line. Over https,
curl trusts the master by deploy/secrets/tls_ca (\$FLOTA_CA_FILE overrides
it; without either, the system's CAs).
USAGE
}

url="https://127.0.0.1:${HTTP_PORT:-8080}"
model='echo'
timeout=60
services=1
while [ $# -gt 0 ]; do
  case "$1" in
    --url | --model | --timeout)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
        --url) url=${2%/} ;;
        --model) model=$2 ;;
        --timeout) timeout=$2 ;;
      esac
      shift
      ;;
    --no-services) services=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds"
[[ "$model" =~ ^[A-Za-z0-9._:/-]+$ ]] || die "--model: unexpected characters in '$model'"
need curl

token=${FLOTA_API_TOKEN:-}
tokens_file="$SECRETS_DIR/api_tokens"
if [ -z "$token" ] && [ -r "$tokens_file" ]; then
  # The token of the first "tenant:token[:role]" line that is not a comment.
  token=$(sed -n '/^[[:space:]]*#/d; s/^[^:]*:[[:space:]]*\([^[:space:],:]*\).*/\1/p' "$tokens_file" | head -n 1)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl_config="$work/curl.conf"
ca_file=${FLOTA_CA_FILE:-$SECRETS_DIR/tls_ca}
(
  umask 077
  : >"$curl_config"
  [ -z "$token" ] || printf 'header = "Authorization: Bearer %s"\n' "$token" >>"$curl_config"
  case "$url" in
    https://*) [ ! -r "$ca_file" ] || printf 'cacert = "%s"\n' "$ca_file" >>"$curl_config" ;;
  esac
)

# Runs "$@" every second until it succeeds or $timeout seconds pass.
retry() {
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for $what"
    sleep 1
  done
}

all_replicas_running() {
  local lines line name replicas running desired
  lines=$(docker stack services "$STACK" --format '{{.Name}} {{.Replicas}}') || return 1
  [ -n "$lines" ] || return 1
  while read -r line; do
    name=${line%% *}
    replicas=${line#* }
    running=${replicas%%/*}
    desired=${replicas#*/}
    desired=${desired%% *}
    if [ "$running" != "$desired" ]; then
      echo "  $name: $replicas" >&2
      return 1
    fi
  done <<<"$lines"
}

if [ "$services" = 1 ]; then
  check_stack_name
  need_swarm_manager
  docker stack services "$STACK" --format '{{.Name}}' | grep -q . ||
    die "no stack '$STACK' (./deploy.sh)"
  retry "every replica of stack $STACK" all_replicas_running
  note "ok: every service of $STACK runs all its replicas"
fi

retry "$url/readyz" curl -fs -o /dev/null -K "$curl_config" --max-time 5 "$url/readyz"
note "ok: $url/readyz is ready"

status=$(curl -s -o /dev/null -w '%{http_code}' -K "$curl_config" --max-time 5 "$url/api/workers" || true)
if [ "$status" = 401 ]; then
  die "$url/api needs an API token: set FLOTA_API_TOKEN, or put deploy/secrets/api_tokens here"
fi

online_worker() {
  curl -fs -K "$curl_config" --max-time 5 "$url/api/workers" | grep -q '"state":"online"'
}
retry "an online worker" online_worker
note "ok: a worker is online"

prompt="verify $(date -u +%Y%m%dT%H%M%SZ) $$"
answer=$(curl -sS -K "$curl_config" --max-time 10 -H 'content-type: application/json' \
  -d "{\"prompt\":\"$prompt\",\"model\":\"$model\"}" "$url/api/tasks") ||
  die "POST $url/api/tasks failed"
id=$(printf '%s' "$answer" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$id" ] || die "POST /api/tasks did not queue the task: $answer"

task=""
finished() {
  task=$(curl -fs -K "$curl_config" --max-time 5 "$url/api/tasks/$id") || return 1
  case "$task" in
    *'"state":"completed"'* | *'"state":"failed"'*) return 0 ;;
    *) return 1 ;;
  esac
}
retry "task $id to finish" finished
case "$task" in
  *'"state":"completed"'*) ;;
  *) die "task $id failed: $task" ;;
esac
if [ "$model" = echo ] && [[ "$task" != *"\"result\":\"echo: $prompt\""* ]]; then
  die "task $id completed with an unexpected result: $task"
fi
worker=$(printf '%s' "$task" | sed -n 's/.*"workerId":"\([^"]*\)".*/\1/p')
note "ok: task $id completed on ${worker:-a worker}"
