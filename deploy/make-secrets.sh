#!/usr/bin/env bash
# Writes flota's secrets into deploy/secrets/ (or $SECRETS_DIR), generating
# each one that is missing and keeping the ones already there.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: deploy/make-secrets.sh [--help]

Creates the secrets docker-compose.yml and stack.yml use, as files in
$SECRETS_DIR (one value per file), generating every missing one:

  mqtt_master_password    MQTT password of the master (user _master)
  mqtt_worker_password    MQTT password shared by every worker (user = worker id)
  mqtt_observer_password  MQTT password of the read-only user _observer (logs.sh --mqtt)
  worker_token            gRPC token workers send the master (WORKER_TOKEN)
  api_tokens              REST/Socket.IO tokens, "tenant:token" per line (API_TOKENS_FILE);
                          starts with one token for tenant "default" and the
                          autoscaler's, for tenant "autoscaler"
  autoscaler_api_token    the autoscaler's API token (AUTOSCALE_API_TOKEN)
  redis_password          Redis password
  redis_acl               Redis ACL file holding that password's SHA-256
  queue_url               QUEUE_URL with that password: redis://:<password>@redis:6379
  grafana_admin_password  Grafana's admin password (compose profile "monitoring")

Existing files are kept, so running it again changes nothing. redis_acl and
queue_url are derived from redis_password when they are missing. An
api_tokens that lacks the autoscaler's token gets it appended.

Environment: SECRETS_DIR (default deploy/secrets).
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; die "unknown argument '$1'" ;;
esac

random_hex() {
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

sha256_hex() {
  if command -v sha256sum >/dev/null 2>&1; then
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    printf '%s' "$1" | shasum -a 256 | cut -d' ' -f1
  else
    die "needs sha256sum or shasum"
  fi
}

# Writes $2 into $SECRETS_DIR/$1 unless that file exists.
put() {
  local file="$SECRETS_DIR/$1"
  if [ -s "$file" ]; then
    return 0
  fi
  printf '%s\n' "$2" >"$file"
  # 0644 inside a 0700 directory: only the owner reaches the file on this
  # host, while docker compose (which bind-mounts secret files as they are)
  # still lets the containers' non-root users read it.
  chmod 0644 "$file"
  note "wrote $file"
}

mkdir -p "$SECRETS_DIR"
chmod 0700 "$SECRETS_DIR"

for name in mqtt_master_password mqtt_worker_password mqtt_observer_password \
  worker_token redis_password grafana_admin_password autoscaler_api_token; do
  put "$name" "$(random_hex)"
done

redis_password=$(cat "$SECRETS_DIR/redis_password")
[ -n "$redis_password" ] || die "$SECRETS_DIR/redis_password is empty"
[[ "$redis_password" =~ ^[A-Za-z0-9._~-]+$ ]] ||
  die "$SECRETS_DIR/redis_password: use only letters, digits and . _ ~ - (it goes into a URL)"
autoscaler_token=$(cat "$SECRETS_DIR/autoscaler_api_token")
put api_tokens "default:$(random_hex)
autoscaler:$autoscaler_token"
# An api_tokens from before the autoscaler: the master must know its token too.
tokens="$SECRETS_DIR/api_tokens"
if ! grep -qxF "autoscaler:$autoscaler_token" "$tokens"; then
  # A file without a final newline would glue the new entry to its last one.
  [ -z "$(tail -c1 "$tokens")" ] || echo >>"$tokens"
  printf 'autoscaler:%s\n' "$autoscaler_token" >>"$tokens"
  note "added the autoscaler's token to $tokens (a running master needs the new file: docs/DEPLOY.md, Autoscaling)"
fi
put redis_acl "user default on #$(sha256_hex "$redis_password") ~* &* +@all"
put queue_url "redis://:${redis_password}@redis:6379"
