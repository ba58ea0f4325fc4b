#!/bin/sh
# Starts Mosquitto for flota (image eclipse-mosquitto:2, run as root).
#
# 1. Builds the password file from the secrets: _master, _observer, and one
#    user per possible worker id ("<prefix>-<n>" for every prefix in
#    $MQTT_WORKER_PREFIXES and n = 1..$MQTT_WORKER_MAX), all workers sharing
#    the worker password. Plain text goes only into a 0600 temp file that
#    mosquitto_passwd hashes in place; no password appears in a command line.
# 2. Copies the ACL beside it, owned by the mosquitto user (Mosquitto warns
#    about, and will refuse, auth files that others can read).
# 3. Runs mosquitto -c $MOSQUITTO_CONF (skipped with --prepare-only).
set -eu

SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
AUTH_DIR=${AUTH_DIR:-/mosquitto/auth}
ACL_SOURCE=${ACL_SOURCE:-/mosquitto/config/flota.acl}
MOSQUITTO_CONF=${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
MQTT_WORKER_PREFIXES=${MQTT_WORKER_PREFIXES:-cpu gpu}
MQTT_WORKER_MAX=${MQTT_WORKER_MAX:-64}

die() {
  echo "mosquitto-entrypoint: $*" >&2
  exit 64
}

secret() {
  file="$SECRETS_DIR/$1"
  [ -r "$file" ] || die "secret $file is missing or unreadable"
  value=$(cat "$file")
  [ -n "$value" ] || die "secret $file is empty"
  case "$value" in
    *"
"*) die "secret $file has more than one line" ;;
  esac
  printf '%s' "$value"
}

case "$MQTT_WORKER_MAX" in
  '' | *[!0-9]*) die "MQTT_WORKER_MAX must be a number, got '$MQTT_WORKER_MAX'" ;;
esac
[ -r "$ACL_SOURCE" ] || die "ACL $ACL_SOURCE is missing"

master=$(secret mqtt_master_password)
observer=$(secret mqtt_observer_password)
worker=$(secret mqtt_worker_password)

umask 077
mkdir -p "$AUTH_DIR"
tmp="$AUTH_DIR/passwd.new"
{
  printf '_master:%s\n' "$master"
  printf '_observer:%s\n' "$observer"
  for prefix in $MQTT_WORKER_PREFIXES; do
    n=1
    while [ "$n" -le "$MQTT_WORKER_MAX" ]; do
      printf '%s-%s:%s\n' "$prefix" "$n" "$worker"
      n=$((n + 1))
    done
  done
} >"$tmp"
mosquitto_passwd -U "$tmp"
mv "$tmp" "$AUTH_DIR/passwd"
cp "$ACL_SOURCE" "$AUTH_DIR/acl"
unset master observer worker

if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
  chown -R mosquitto:mosquitto "$AUTH_DIR"
  [ ! -d /mosquitto/data ] || chown -R mosquitto:mosquitto /mosquitto/data
fi

if [ "${1:-}" = "--prepare-only" ]; then
  exit 0
fi
exec mosquitto -c "$MOSQUITTO_CONF"
