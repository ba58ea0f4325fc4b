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

  flota_secret            signs every worker credential and join token
                          (the master's FLOTA_SECRET_FILE)
  worker_join_cpu         join token for worker ids cpu-*: a worker-cpu
                          replica trades it for its own credential at start
                          (WORKER_JOIN_TOKEN)
  worker_join_gpu         the same for gpu-* (worker-gpu)
  worker_join_python      the same for py-* (worker-python)
  mqtt_master_password    MQTT password of the master (user _master, the
                          broker's dynamic-security admin)
  mqtt_observer_password  MQTT password of the read-only user _observer
                          (logs.sh --mqtt)
  tls_ca                  CA certificate workers trust the master by (TLS_CA)
  tls_cert, tls_key       the master's certificate and key (HTTPS, gRPC),
                          signed by that CA, for the names master, localhost,
                          127.0.0.1 and \$TLS_HOSTNAMES
  tls_ca_key              the CA's key: stays on this machine, never a
                          Docker secret (it signs further certificates)
  api_tokens              REST/Socket.IO tokens, "tenant:token:role" per line
                          (API_TOKENS_FILE): an admin token for tenant
                          "default" and the autoscaler's, for tenant
                          "autoscaler"
  autoscaler_api_token    the autoscaler's API token (AUTOSCALE_API_TOKEN)
  redis_password          Redis password
  redis_acl               Redis ACL file holding that password's SHA-256
  queue_url               QUEUE_URL with that password: redis://:<password>@redis:6379
  grafana_admin_password  Grafana's admin password (compose profile "monitoring")

Existing files are kept, so running it again changes nothing, with three
exceptions: a join token that flota_secret did not sign (a new
flota_secret) is made again; redis_acl and queue_url are derived from
redis_password when they are missing; an api_tokens that lacks the
autoscaler's token gets it appended. Bring your own certificate by putting
tls_cert, tls_key and the tls_ca that signed it here first (docs/DEPLOY.md,
TLS).

Environment:
  SECRETS_DIR    where the files go (default deploy/secrets)
  TLS_HOSTNAMES  more names for a new master certificate, comma-separated
                 (DNS names or IP addresses your browsers use, e.g.
                 flota.example.com,10.0.0.5)

Needs openssl.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; die "unknown argument '$1'" ;;
esac
need openssl od

random_hex() {
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

sha256_hex() {
  printf '%s' "$1" | openssl dgst -sha256 -r | cut -d' ' -f1
}

# HMAC-SHA256 of message $2 under key $1, base64url without padding: how
# master/src/security/worker-credentials.ts signs tokens. Built from two
# SHA-256 passes in this shell, so the key is never on a command line.
hmac_b64url() {
  local key=$1 message=$2 i code esc inner_pad='' outer_pad='' inner
  # Keys longer than SHA-256's block would be hashed first; ours are 64 characters.
  [ "${#key}" -le 64 ] || die "flota_secret is over 64 characters: keep it to 32-64"
  for ((i = 0; i < 64; i++)); do
    code=0
    [ "$i" -ge "${#key}" ] || printf -v code '%d' "'${key:i:1}"
    printf -v esc '\\x%02x' $((code ^ 0x36))
    inner_pad+=$esc
    printf -v esc '\\x%02x' $((code ^ 0x5c))
    outer_pad+=$esc
  done
  inner=$({
    printf '%b' "$inner_pad"
    printf '%s' "$message"
  } | openssl dgst -sha256 -r | cut -c1-64 | sed 's/../\\x&/g')
  {
    printf '%b' "$outer_pad"
    printf '%b' "$inner"
  } | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# Milliseconds since the epoch in base 36, a token's issue time.
issued36() {
  local ms digits=0123456789abcdefghijklmnopqrstuvwxyz out=''
  ms=$(date +%s%3N)
  # A date(1) without %N (BSD) prints it literally: seconds will do.
  [[ "$ms" =~ ^[0-9]+$ ]] || ms=$(($(date +%s) * 1000))
  while [ "$ms" -gt 0 ]; do
    out=${digits:ms % 36:1}$out
    ms=$((ms / 36))
  done
  printf '%s' "${out:-0}"
}

# A join token for worker ids starting with $1: fjt1.<prefix>.<issued>.<mac>.
join_token() {
  local body
  body="fjt1.$1.$(issued36)"
  printf '%s.%s' "$body" "$(hmac_b64url "$flota_secret" "$body")"
}

# True if join token $1 was signed with the current flota_secret.
signed_here() {
  local token=$1
  [[ "$token" =~ ^(fjt1\.[A-Za-z0-9._:-]*\.[0-9a-z]{1,12})\.([A-Za-z0-9_-]{43})$ ]] || return 1
  [ "$(hmac_b64url "$flota_secret" "${BASH_REMATCH[1]}")" = "${BASH_REMATCH[2]}" ]
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

for name in flota_secret mqtt_master_password mqtt_observer_password \
  redis_password grafana_admin_password autoscaler_api_token; do
  put "$name" "$(random_hex)"
done

# Join tokens, signed with flota_secret (what `flota token join <prefix>`
# asks a running master for).
flota_secret=$(cat "$SECRETS_DIR/flota_secret")
[ "${#flota_secret}" -ge 32 ] || die "$SECRETS_DIR/flota_secret: use at least 32 characters"
# <secret suffix>:<worker id prefix>, one per worker service.
for service in cpu:cpu- gpu:gpu- python:py-; do
  file="$SECRETS_DIR/worker_join_${service%%:*}"
  if [ -s "$file" ] && ! signed_here "$(cat "$file")"; then
    rm "$file"
    note "$file was not signed with the current flota_secret: making it again"
  fi
  put "worker_join_${service%%:*}" "$(join_token "${service#*:}")"
done
unset flota_secret

redis_password=$(cat "$SECRETS_DIR/redis_password")
[ -n "$redis_password" ] || die "$SECRETS_DIR/redis_password is empty"
[[ "$redis_password" =~ ^[A-Za-z0-9._~-]+$ ]] ||
  die "$SECRETS_DIR/redis_password: use only letters, digits and . _ ~ - (it goes into a URL)"
autoscaler_token=$(cat "$SECRETS_DIR/autoscaler_api_token")
# The autoscaler reads every tenant's queues: an admin token.
put api_tokens "default:$(random_hex):admin
autoscaler:$autoscaler_token:admin"
# An api_tokens from before the autoscaler: the master must know its token too.
tokens="$SECRETS_DIR/api_tokens"
if ! grep -qE "^autoscaler:$autoscaler_token(:admin)?\$" "$tokens"; then
  # A file without a final newline would glue the new entry to its last one.
  [ -z "$(tail -c1 "$tokens")" ] || echo >>"$tokens"
  printf 'autoscaler:%s:admin\n' "$autoscaler_token" >>"$tokens"
  note "added the autoscaler's token to $tokens (a running master needs the new file: docs/DEPLOY.md, Autoscaling)"
fi
put redis_acl "user default on #$(sha256_hex "$redis_password") ~* &* +@all"
put queue_url "redis://:${redis_password}@redis:6379"

# TLS: a private CA and the master's certificate, unless they are here already.
tls() {
  local dir=$SECRETS_DIR names san entry conf
  if [ -s "$dir/tls_cert" ] && [ -s "$dir/tls_key" ]; then
    [ -s "$dir/tls_ca" ] ||
      die "$dir/tls_cert is there without tls_ca: add the CA certificate that signed it (workers trust the master by it)"
    return 0
  fi
  if [ -s "$dir/tls_cert" ] || [ -s "$dir/tls_key" ]; then
    die "$dir has one of tls_cert and tls_key: add the other, or remove it to have both made"
  fi
  conf=$(mktemp)
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -f '$conf'" RETURN
  if [ ! -s "$dir/tls_ca" ]; then
    rm -f "$dir/tls_ca_key"
    printf '%s\n' '[req]' 'distinguished_name = dn' 'prompt = no' 'x509_extensions = ca' \
      '[dn]' 'CN = flota CA' \
      '[ca]' 'basicConstraints = critical,CA:TRUE' 'keyUsage = critical,keyCertSign,cRLSign' \
      'subjectKeyIdentifier = hash' >"$conf"
    (
      umask 077
      openssl req -x509 -new -config "$conf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout "$dir/tls_ca_key" -out "$dir/tls_ca" -days 3650 2>/dev/null
    ) || die "openssl could not make the CA"
    chmod 0644 "$dir/tls_ca"
    note "wrote $dir/tls_ca (and its key, tls_ca_key)"
  fi
  [ -s "$dir/tls_ca_key" ] ||
    die "$dir/tls_ca is there without tls_ca_key, so no certificate can be signed with it: add tls_cert and tls_key signed by it, or remove tls_ca"
  # The name workers and the autoscaler dial, and this machine's.
  names="DNS:master,DNS:localhost,IP:127.0.0.1"
  IFS=',' read -r -a extra <<<"${TLS_HOSTNAMES:-}"
  for entry in "${extra[@]}"; do
    # Spaces around a name are fine, inside one they are not.
    entry=${entry#"${entry%%[![:space:]]*}"}
    entry=${entry%"${entry##*[![:space:]]}"}
    [ -n "$entry" ] || continue
    if [[ "$entry" =~ ^[0-9.]+$ || "$entry" == *:* ]]; then
      names+=",IP:$entry"
    elif [[ "$entry" =~ ^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
      names+=",DNS:$entry"
    else
      die "TLS_HOSTNAMES: '$entry' is not a host name or IP address"
    fi
  done
  san="subjectAltName = $names"
  printf '%s\n' '[req]' 'distinguished_name = dn' 'prompt = no' '[dn]' 'CN = master' \
    '[leaf]' 'basicConstraints = critical,CA:FALSE' \
    'keyUsage = critical,digitalSignature,keyEncipherment' \
    'extendedKeyUsage = serverAuth,clientAuth' "$san" >"$conf"
  (
    umask 077
    openssl req -new -config "$conf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/tls_key" 2>/dev/null |
      openssl x509 -req -CA "$dir/tls_ca" -CAkey "$dir/tls_ca_key" \
        -set_serial "0x$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" -days 825 \
        -extfile "$conf" -extensions leaf -out "$dir/tls_cert" 2>/dev/null
  ) || die "openssl could not make the master's certificate"
  # Read by the master's non-root user when compose bind-mounts it (see put).
  chmod 0644 "$dir/tls_cert" "$dir/tls_key"
  note "wrote $dir/tls_cert and tls_key for ${names//DNS:/}"
}
tls
