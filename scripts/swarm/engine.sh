# shellcheck shell=bash
# A private Docker engine, a one-node swarm and a registry for the Swarm test
# (scripts/swarm-test.sh; sourced, not run). Everything lives under
# $SWARM_DIR and is undone by engine_cleanup, which is safe to run more than
# once and after a failure at any step:
#
#   dockerd (and the containerd it starts) with its own data root, exec root
#   and socket, --iptables=false --ip-masq=false --ip-forward=false: the
#   host's firewall and forwarding stay as they were. Ports it publishes
#   bind 127.0.0.1 only.
#   Debian's docker-registry on a free port of 127.0.0.1.
#
# Stopping dockerd leaves network namespaces mounted under its exec root and
# the docker0 / docker_gwbridge links behind: engine_cleanup removes them.

# The rules of the filter, mangle and nat tables, one "<table> <rule>" a line.
iptables_rules() {
  local table
  command -v iptables >/dev/null 2>&1 || return 0
  for table in filter mangle nat; do
    iptables -t "$table" -S 2>/dev/null | sed -n "s/^-A /$table -A /p"
  done
}

# Set by engine_start.
ENGINE_PID=""
REGISTRY_PID=""
ENGINE_SOCKET=""
# Links that existed before: never removed.
ENGINE_LINKS_BEFORE=""
ENGINE_CONTAINERD_RUN_BEFORE=1
# Even with --iptables=false, an encrypted overlay network adds rules for
# VXLAN (udp 4789) to INPUT (filter) and OUTPUT (mangle); cleanup removes the
# ones that were not there before.
ENGINE_RULES_BEFORE=""
# dockerd 20.10 writes its identity there when there is none.
ENGINE_KEY_BEFORE=1

swarm_log() {
  printf '%s swarm-test: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

swarm_die() {
  swarm_log "FAILED: $*"
  exit 1
}

# A free TCP port on 127.0.0.1 (the kernel's pick; nothing holds it after).
free_port() {
  node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

link_names() {
  ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'
}

# engine_start DIR: dockerd, swarm init, registry. Exports DOCKER_HOST and
# sets REGISTRY (127.0.0.1:<port>).
engine_start() {
  local dir=$1 deadline
  ENGINE_LINKS_BEFORE=$(link_names)
  [ -e /run/containerd ] || ENGINE_CONTAINERD_RUN_BEFORE=0
  [ -e /etc/docker/key.json ] || ENGINE_KEY_BEFORE=0
  ENGINE_RULES_BEFORE=$(iptables_rules)
  for link in docker0 docker_gwbridge; do
    if printf '%s\n' "$ENGINE_LINKS_BEFORE" | grep -qx "$link"; then
      swarm_die "a link $link already exists: another Docker engine runs on this host (or a previous run left it; 'ip link del $link' once nothing uses it)"
    fi
  done
  mkdir -p "$dir/data" "$dir/exec" "$dir/registry"
  # The engine's layers and build cache in memory: faster builds, and
  # cleanup is an unmount rather than deleting some 100,000 files.
  if [ "${SWARM_TMPFS:-1}" = 1 ]; then
    mount -t tmpfs -o "size=${SWARM_TMPFS_SIZE:-8g},mode=0711" flota-swarm "$dir/data" ||
      swarm_die "cannot mount a tmpfs at $dir/data (SWARM_TMPFS=0 keeps the engine's data on disk)"
  fi
  ENGINE_SOCKET="$dir/docker.sock"
  export DOCKER_HOST="unix://$ENGINE_SOCKET"
  # --ip: ports published in mode host listen on loopback only.
  dockerd \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    -H "unix://$ENGINE_SOCKET" \
    --iptables=false --ip-masq=false --ip-forward=false \
    --ip 127.0.0.1 \
    --storage-driver overlay2 \
    --log-level warn \
    >"$dir/dockerd.log" 2>&1 &
  ENGINE_PID=$!
  deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
      tail -n 20 "$dir/dockerd.log" >&2 || true
      ENGINE_PID=""
      swarm_die "dockerd exited at start (log above, $dir/dockerd.log): this host cannot run a Docker engine (cgroups, overlay2, privileges?)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || swarm_die "dockerd did not answer on $ENGINE_SOCKET within 60 s ($dir/dockerd.log)"
    sleep 0.3
  done
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null ||
    swarm_die "docker swarm init failed ($dir/dockerd.log)"

  local port
  port=$(free_port)
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY="127.0.0.1:$port"
  deadline=$((SECONDS + 20))
  until curl -fs "http://$REGISTRY/v2/" >/dev/null; do
    kill -0 "$REGISTRY_PID" 2>/dev/null || swarm_die "docker-registry exited ($dir/registry.log)"
    [ "$SECONDS" -lt "$deadline" ] || swarm_die "docker-registry did not answer on $REGISTRY ($dir/registry.log)"
    sleep 0.2
  done
  export REGISTRY
}

# Waits up to $2 seconds for process $1 to end.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# Processes whose command line names $1 (the engine's containerd and its
# shims, which outlive a dockerd killed hard).
pids_naming() {
  local proc pid
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$pid" != "$$" ] || continue
    # A process may end between the glob and the read.
    if { tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null | grep -qF -- "$1"; then
      echo "$pid"
    fi
  done
}

# engine_cleanup DIR: stops what engine_start started and removes every
# trace of it. Reports what it could not remove; never fails.
engine_cleanup() {
  local dir=$1 pid mnt link left=0
  if [ -n "$REGISTRY_PID" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait_gone "$REGISTRY_PID" 5 || kill -9 "$REGISTRY_PID" 2>/dev/null || true
    REGISTRY_PID=""
  fi
  if [ -n "$ENGINE_PID" ]; then
    # Leaving the swarm first stops its tasks at once (no grace periods).
    DOCKER_HOST="unix://$ENGINE_SOCKET" timeout 30 docker swarm leave --force >/dev/null 2>&1 || true
    kill "$ENGINE_PID" 2>/dev/null || true
    wait_gone "$ENGINE_PID" 30 || {
      swarm_log "dockerd did not stop within 30 s: killing it"
      kill -9 "$ENGINE_PID" 2>/dev/null || true
      wait_gone "$ENGINE_PID" 5 || true
    }
    ENGINE_PID=""
  fi
  # containerd and shims started for this engine (their command lines name
  # its directory).
  for pid in $(pids_naming "$dir/"); do
    kill "$pid" 2>/dev/null || true
  done
  sleep 0.5
  for pid in $(pids_naming "$dir/"); do
    kill -9 "$pid" 2>/dev/null || true
  done
  # Mounts under the directory, deepest first: network namespaces, overlay
  # layers, shm, secrets.
  while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
  # Links the engine made: the bridges and any veth left on them.
  while read -r link; do
    [ -n "$link" ] || continue
    printf '%s\n' "$ENGINE_LINKS_BEFORE" | grep -qxF "$link" && continue
    case "$link" in
      docker0 | docker_gwbridge | veth* | vx-* | br-*) ip link del "$link" 2>/dev/null || true ;;
    esac
  done < <(link_names)
  local table rule
  while read -r table rule; do
    [ -n "$rule" ] || continue
    printf '%s\n' "$ENGINE_RULES_BEFORE" | grep -qxF "$table $rule" && continue
    case "$rule" in
      # iptables -S quotes what needs quoting: eval splits it back into words.
      *"--dport 4789 "*) eval "iptables -t $table -D ${rule#-A }" 2>/dev/null || true ;;
    esac
  done < <(iptables_rules)
  if [ "$ENGINE_CONTAINERD_RUN_BEFORE" = 0 ] && [ -d /run/containerd ]; then
    rm -rf /run/containerd
  fi
  [ "$ENGINE_KEY_BEFORE" = 1 ] || rm -f /etc/docker/key.json
  [ ! -e /run/docker/plugins ] || rmdir /run/docker/plugins /run/docker 2>/dev/null || true
  rm -rf "$dir" 2>/dev/null || true

  # What is left, if anything, is said plainly.
  if [ -n "$(pids_naming "$dir/")" ]; then
    swarm_log "left behind: processes $(pids_naming "$dir/" | tr '\n' ' ')"
    left=1
  fi
  if awk -v d="$dir/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    swarm_log "left behind: mounts under $dir"
    left=1
  fi
  for link in docker0 docker_gwbridge; do
    if link_names | grep -qx "$link" && ! printf '%s\n' "$ENGINE_LINKS_BEFORE" | grep -qx "$link"; then
      swarm_log "left behind: link $link"
      left=1
    fi
  done
  [ ! -e "$dir" ] || { swarm_log "left behind: $dir"; left=1; }
  if iptables_rules | grep -F -- '--dport 4789 ' | grep -qvxF -- "$ENGINE_RULES_BEFORE"; then
    swarm_log "left behind: iptables rules for udp 4789 (iptables -S; iptables -t mangle -S)"
    left=1
  fi
  return "$left"
}
