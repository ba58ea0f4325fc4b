#!/bin/sh
# Entrypoint of the flota-master and flota-worker images (the master image
# also runs the autoscaler: `autoscale`), and of flota-worker-python.
#
# Secrets arrive as files (Docker secrets under /run/secrets). For each
# variable below, NAME_FILE=<path> sets NAME to that file's contents (trailing
# newlines removed), so a password never has to be written into a stack file.
# Setting both NAME and NAME_FILE is an error. Then it runs `flota "$@"`, or,
# for the command `python-worker` (flota-worker-python's), the Python worker.
# (FLOTA_SECRET_FILE, API_TOKENS_FILE and the TLS_* paths are not in the
# list: flota reads those files itself.)
set -eu

# Keep in step with docs/DEPLOY.md and tests/unit/deploy (they read this line).
FILE_VARS="MQTT_PASSWORD WORKER_TOKEN WORKER_JOIN_TOKEN QUEUE_URL GEMINI_API_KEY OPENAI_API_KEY AUTOSCALE_API_TOKEN"

die() {
  echo "flota-entrypoint: $*" >&2
  exit 64
}

for name in $FILE_VARS; do
  # $name comes from the fixed list above, so eval only ever sees those names.
  eval "path=\${${name}_FILE:-}"
  [ -n "$path" ] || continue
  eval "direct=\${${name}:-}"
  [ -z "$direct" ] || die "both $name and ${name}_FILE are set; keep one"
  [ -r "$path" ] || die "${name}_FILE=$path is not a readable file"
  value=$(cat "$path")
  [ -n "$value" ] || die "${name}_FILE=$path is empty"
  export "$name=$value"
  unset "${name}_FILE"
done
unset path direct value

# The images leave out the embedded PostgreSQL binaries (about 60 MB): a
# containerised master needs an external store.
if [ "${1:-}" = "master" ] && [ -z "${QUEUE_URL:-}" ]; then
  die "set QUEUE_URL (or QUEUE_URL_FILE), e.g. redis://redis:6379: this image has no embedded PostgreSQL"
fi

# The Python worker's image has no Node, and its worker no other command.
if [ "${1:-}" = "python-worker" ]; then
  shift
  command -v python3 >/dev/null 2>&1 || die "python-worker runs in the flota-worker-python image only"
  exec python3 -m flota_worker "$@"
fi

exec node /app/dist/cli/flota.js "$@"
