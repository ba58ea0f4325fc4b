#!/bin/sh
# Starts Mosquitto for flota (image eclipse-mosquitto:2, run as root) with
# the dynamic-security plugin, whose state lives in $DYNSEC_FILE on the data
# volume: the master adds a login per worker there at run time (MQTT_DYNSEC),
# so it must outlive the container.
#
# First start (no $DYNSEC_FILE yet) writes it with:
#   _master     the master: a dynsec admin (role dynsec-admin: the plugin's
#               control topics) with every right under the prefix (role
#               flota-master), password from the secret mqtt_master_password.
#               It adds each worker's login when that worker enrolls.
#   _observer   read-only: may subscribe to <prefix>/logs/# and nothing else
#               (logs.sh --mqtt), password from mqtt_observer_password, and
#               only with client id flota-observer (see below).
# Anonymous clients are refused (allow_anonymous false in mosquitto.conf):
# Mosquitto hands a client that connects with an existing client id the
# session of that id, with its subscriptions and queued messages, whatever
# its login. An anonymous client naming itself flota-worker-cpu-1 would
# receive cpu-1's assignments. So every login is either the master or bound
# to one client id: each worker to flota-worker-<id> (the master binds it),
# _observer to flota-observer. The plugin's anonymous group (flota-observers,
# logs only) is set up all the same, for a broker that allows anonymous
# clients on a network of its own.
# Every later start keeps the file (and the workers the master added) and
# sets the passwords of _master and _observer from the secrets again, so a
# rotated secret takes effect on the broker's next start.
#
# Passwords go to mosquitto_ctrl on its standard input, never on a command
# line; only their salted PBKDF2 hashes are written. Then it runs
# mosquitto -c $MOSQUITTO_CONF (skipped with --prepare-only).
set -eu

SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
DYNSEC_FILE=${DYNSEC_FILE:-/mosquitto/data/dynamic-security.json}
MOSQUITTO_CONF=${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
# flota's MQTT_PREFIX: the observers' topics are under it.
MQTT_PREFIX=${MQTT_PREFIX:-flota/v1}

# Names and rights as master/src/broker/dynsec.ts sets them up (it finds them
# in place and leaves them).
MASTER_ROLE=flota-master
OBSERVER_ROLE=flota-observer
OBSERVER_GROUP=flota-observers
ADMIN_ROLE=dynsec-admin
# logs.sh --mqtt connects with it.
OBSERVER_CLIENT_ID=flota-observer

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

# The prefix goes into JSON and topic filters: plain topic levels only.
case "$MQTT_PREFIX" in
  '' | /* | */ | *//* | *[!A-Za-z0-9_./-]*)
    die "MQTT_PREFIX must be topic levels of A-Z a-z 0-9 _ . - separated by /, got '$MQTT_PREFIX'"
    ;;
esac
command -v mosquitto_ctrl >/dev/null 2>&1 || die "needs mosquitto_ctrl (Mosquitto 2)"

umask 077
data_dir=$(dirname "$DYNSEC_FILE")
mkdir -p "$data_dir"
# Beside the file: the final mv is then a rename on one file system.
work=$(mktemp -d "$data_dir/.dynsec-init.XXXXXX")
trap 'rm -rf "$work"' EXIT

# hash USER SECRET-NAME: sets pw_hash, pw_salt and pw_iterations to a fresh
# hash of that secret, made by mosquitto_ctrl itself so that it is always in
# the format this Mosquitto checks.
hash() {
  printf '%s\n%s\n' "$(secret "$2")" "$(secret "$2")" |
    mosquitto_ctrl dynsec init "$work/$1.json" "$1" >/dev/null ||
    die "mosquitto_ctrl could not hash the password of $1"
  pw_hash=$(sed -n 's/.*"password":[[:space:]]*"\([^"]*\)".*/\1/p' "$work/$1.json" | head -n 1)
  pw_salt=$(sed -n 's/.*"salt":[[:space:]]*"\([^"]*\)".*/\1/p' "$work/$1.json" | head -n 1)
  pw_iterations=$(sed -n 's/.*"iterations":[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$work/$1.json" | head -n 1)
  if [ -z "$pw_hash" ] || [ -z "$pw_salt" ] || [ -z "$pw_iterations" ]; then
    die "cannot read the password hash mosquitto_ctrl wrote for $1"
  fi
}

hash _master mqtt_master_password
master_hash=$pw_hash master_salt=$pw_salt master_iterations=$pw_iterations
hash _observer mqtt_observer_password
observer_hash=$pw_hash observer_salt=$pw_salt observer_iterations=$pw_iterations

if [ ! -e "$DYNSEC_FILE" ]; then
  # acl TYPE TOPIC [,]: one allowed ACL entry of a role.
  acl() {
    printf '\t\t\t\t\t"acltype":\t"%s",\n\t\t\t\t\t"topic":\t"%s",\n' "$1" "$2"
    printf '\t\t\t\t\t"allow":\ttrue\n\t\t\t\t}%s\n' "${3:-}"
  }
  {
    printf '{\n'
    printf '\t"defaultACLAccess":\t{\n'
    printf '\t\t"publishClientSend":\tfalse,\n\t\t"publishClientReceive":\ttrue,\n'
    printf '\t\t"subscribe":\tfalse,\n\t\t"unsubscribe":\ttrue\n'
    printf '\t},\n'
    printf '\t"clients":\t[{\n'
    printf '\t\t\t"username":\t"_master",\n'
    printf '\t\t\t"textName":\t"flota master, dynsec admin",\n'
    printf '\t\t\t"password":\t"%s",\n' "$master_hash"
    printf '\t\t\t"salt":\t"%s",\n' "$master_salt"
    printf '\t\t\t"iterations":\t%s,\n' "$master_iterations"
    printf '\t\t\t"roles":\t[{\n\t\t\t\t\t"rolename":\t"%s"\n\t\t\t\t}, {\n' "$ADMIN_ROLE"
    printf '\t\t\t\t\t"rolename":\t"%s"\n\t\t\t\t}]\n' "$MASTER_ROLE"
    printf '\t\t}, {\n'
    printf '\t\t\t"username":\t"_observer",\n'
    printf '\t\t\t"clientid":\t"%s",\n' "$OBSERVER_CLIENT_ID"
    printf '\t\t\t"textName":\t"flota read-only observer",\n'
    printf '\t\t\t"password":\t"%s",\n' "$observer_hash"
    printf '\t\t\t"salt":\t"%s",\n' "$observer_salt"
    printf '\t\t\t"iterations":\t%s,\n' "$observer_iterations"
    printf '\t\t\t"roles":\t[]\n'
    printf '\t\t}],\n'
    printf '\t"groups":\t[{\n'
    printf '\t\t\t"groupname":\t"%s",\n' "$OBSERVER_GROUP"
    printf '\t\t\t"roles":\t[{\n\t\t\t\t\t"rolename":\t"%s"\n\t\t\t\t}],\n' "$OBSERVER_ROLE"
    printf '\t\t\t"clients":\t[{\n\t\t\t\t\t"username":\t"_observer"\n\t\t\t\t}]\n'
    printf '\t\t}],\n'
    printf '\t"anonymousGroup":\t"%s",\n' "$OBSERVER_GROUP"
    printf '\t"roles":\t[{\n'
    # The plugin's own control topics: what makes _master a dynsec admin.
    printf '\t\t\t"rolename":\t"%s",\n\t\t\t"acls":\t[{\n' "$ADMIN_ROLE"
    control="\$CONTROL/dynamic-security/#"
    acl publishClientSend "$control" ', {'
    acl publishClientReceive "$control" ', {'
    acl subscribePattern "$control" ']'
    printf '\t\t}, {\n'
    # The master's rights under the prefix (master/src/broker/dynsec.ts
    # masterAcls), given here because a client whose roles change at run
    # time is disconnected by the plugin: the master would lose the answer.
    printf '\t\t\t"rolename":\t"%s",\n\t\t\t"acls":\t[{\n' "$MASTER_ROLE"
    acl publishClientSend "$MQTT_PREFIX/#" ', {'
    acl publishClientReceive "$MQTT_PREFIX/#" ', {'
    acl subscribePattern "$MQTT_PREFIX/#" ']'
    printf '\t\t}, {\n'
    printf '\t\t\t"rolename":\t"%s",\n\t\t\t"acls":\t[{\n' "$OBSERVER_ROLE"
    acl subscribePattern "$MQTT_PREFIX/logs/#" ']'
    printf '\t\t}]\n'
    printf '}\n'
  } >"$work/new.json"
  mv "$work/new.json" "$DYNSEC_FILE"
else
  # Only the password, salt and iterations of _master and _observer change;
  # every other line (the workers the master added) stays as the plugin
  # wrote it. The plugin writes one key per line, the username first.
  MASTER_HASH=$master_hash MASTER_SALT=$master_salt MASTER_ITERATIONS=$master_iterations \
    OBSERVER_HASH=$observer_hash OBSERVER_SALT=$observer_salt OBSERVER_ITERATIONS=$observer_iterations \
    awk '
      function value(line, key,   s) {
        if (!match(line, "\"" key "\":[ \t]*\"[^\"]*\"")) return ""
        s = substr(line, RSTART, RLENGTH)
        sub("^\"" key "\":[ \t]*\"", "", s)
        sub("\"$", "", s)
        return s
      }
      BEGIN {
        hash["_master"] = ENVIRON["MASTER_HASH"]; salt["_master"] = ENVIRON["MASTER_SALT"]
        rounds["_master"] = ENVIRON["MASTER_ITERATIONS"]
        hash["_observer"] = ENVIRON["OBSERVER_HASH"]; salt["_observer"] = ENVIRON["OBSERVER_SALT"]
        rounds["_observer"] = ENVIRON["OBSERVER_ITERATIONS"]
      }
      /"username":/ { user = value($0, "username") }
      (user in hash) && /"password":/ {
        sub(/"password":[ \t]*"[^"]*"/, "\"password\":\t\"" hash[user] "\""); set[user]++
      }
      (user in hash) && /"salt":/ { sub(/"salt":[ \t]*"[^"]*"/, "\"salt\":\t\"" salt[user] "\"") }
      (user in hash) && /"iterations":/ {
        sub(/"iterations":[ \t]*[0-9]+/, "\"iterations\":\t" rounds[user])
      }
      { print }
      END { if (set["_master"] != 1 || set["_observer"] != 1) exit 3 }
    ' "$DYNSEC_FILE" >"$work/new.json" ||
    die "$DYNSEC_FILE has no single _master and _observer with a password: fix it with mosquitto_ctrl, or remove it (the master then provisions each worker again when it enrolls)"
  mv "$work/new.json" "$DYNSEC_FILE"
fi
unset master_hash master_salt observer_hash observer_salt pw_hash pw_salt

if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
  chown -R mosquitto:mosquitto "$data_dir"
fi

if [ "${1:-}" = "--prepare-only" ]; then
  exit 0
fi
exec mosquitto -c "$MOSQUITTO_CONF"
