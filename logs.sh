#!/usr/bin/env bash
# Follows the logs of a flota stack: a service's container logs, or the log
# lines every flota process publishes over MQTT.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./logs.sh [SERVICE] [--since DURATION] [--help]
       ./logs.sh --mqtt [SOURCE] [--help]

SERVICE (default master) is one of mosquitto, redis, master, worker-cpu,
worker-gpu, worker-python, autoscaler: follows docker service logs of
\${STACK}_SERVICE ("$STACK"), from --since (default 10m) on.

--mqtt follows flota/v1/logs/SOURCE on the stack's broker, where SOURCE is
"master" or a worker id such as cpu-1 (default: all, '#'). It runs
mosquitto_sub in a throw-away container on the stack's network as the
read-only user _observer, with the password from
deploy/secrets/mqtt_observer_password (never on a command line). That login
only works with client id flota-observer, so one --mqtt runs at a time: a
second one takes over and the first ends. Every line is one JSON log record,
prefixed with its topic.

Run --mqtt on a manager node, against its own Docker engine: the password
reaches the container through a bind-mounted temporary directory of this
machine, which a remote engine (DOCKER_HOST, a docker context pointing
elsewhere) cannot see.
USAGE
}

mode=service
target=""
since=10m
while [ $# -gt 0 ]; do
  case "$1" in
    --mqtt) mode=mqtt ;;
    --since)
      [ $# -ge 2 ] || die "--since needs a duration, e.g. 1h"
      since=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option '$1'" ;;
    *)
      [ -z "$target" ] || die "one SERVICE or SOURCE at a time"
      target=$1
      ;;
  esac
  shift
done

check_stack_name
need_swarm_manager

if [ "$mode" = service ]; then
  service=${target:-master}
  case "$service" in
    mosquitto | redis | master | worker-cpu | worker-gpu | worker-python | autoscaler) ;;
    *) die "unknown service '$service' (mosquitto, redis, master, worker-cpu, worker-gpu, worker-python, autoscaler)" ;;
  esac
  docker service inspect "${STACK}_$service" >/dev/null 2>&1 ||
    die "no service ${STACK}_$service: is the stack deployed (./deploy.sh)?"
  exec docker service logs --follow --timestamps --since "$since" "${STACK}_$service"
fi

source_id=${target:-#}
[[ "$source_id" == "#" || "$source_id" =~ ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$ ]] ||
  die "SOURCE must be master or a worker id, not '$source_id'"
password_file="$SECRETS_DIR/mqtt_observer_password"
[ -r "$password_file" ] ||
  die "no $password_file: run this where deploy.sh ran, or copy that file here"

# mosquitto_sub reads default options from \$XDG_CONFIG_HOME/mosquitto_sub.
options_dir=$(mktemp -d)
trap 'rm -rf "$options_dir"' EXIT
chmod 0755 "$options_dir"
(
  umask 077
  # The broker binds _observer to this client id (deploy/mosquitto/entrypoint.sh).
  printf -- '-u _observer\n-P %s\n-i flota-observer\n' "$(cat "$password_file")" \
    >"$options_dir/mosquitto_sub"
)
docker run --rm --network "${STACK}_flota" \
  --env XDG_CONFIG_HOME=/options \
  --volume "$options_dir:/options:ro" \
  eclipse-mosquitto:2.0 \
  mosquitto_sub -h mosquitto -p 1883 -q 0 -v -t "flota/v1/logs/$source_id"
